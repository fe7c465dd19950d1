"""gunicorn settings for Mini-PBX: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

As many gevent workers as the machine has cores: each serves pages, the API and its own websockets (each a
greenlet), and LISTENs for the live changes (PostgreSQL NOTIFY), so an AMI event reaches the dashboards on
every worker; one of them runs the AMI listener (an advisory lock; another takes over within seconds when it
dies). Pick-up claims, rate limits and sign-in throttling live in the database, so every worker counts the
same. `--workers N` (or GUNICORN_CMD_ARGS) overrides the count.
No preload: the gevent patch in wsgi.py must run in the worker before anything else is imported.
"""

import os

bind = "127.0.0.1:8000"
worker_class = "gevent"
# The cores this process may run on (a container's or a systemd CPUAffinity's limit included).
workers = len(os.sched_getaffinity(0))
# Every open dashboard holds one: room for a thousand of them and the pages besides.
worker_connections = 2000
# Websockets stay open for hours; gevent workers heartbeat independently of requests.
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = "127.0.0.1"
