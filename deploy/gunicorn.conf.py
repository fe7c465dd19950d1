"""gunicorn settings for Mini-PBX: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

One gevent worker serves the pages, the API and every websocket (each a greenlet), and runs the AMI
listener. More workers are safe (one listener wins the advisory lock) but rarely needed on a small PBX.
No preload: the gevent patch in wsgi.py must run in the worker before anything else is imported.
"""

bind = "127.0.0.1:8000"
worker_class = "gevent"
workers = 1
# Every open dashboard holds one: room for a thousand of them and the pages besides.
worker_connections = 2000
# Websockets stay open for hours; gevent workers heartbeat independently of requests.
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = "127.0.0.1"
