"""Production entry point (gunicorn -k gevent). The gevent patch comes before any other import, so that
sockets, the AMI connection and psycopg2 (through psycogreen) cooperate instead of blocking the worker.

The `flask` command imports this module too (`flask --app wsgi …`): it has imported flask.cli by then, and
the patch is left out there, since patching after threading is loaded breaks it.
"""

import sys

UNDER_FLASK_CLI = "flask.cli" in sys.modules

if not UNDER_FLASK_CLI:
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from pbxweb import create_app  # noqa: E402

app = create_app()

if not UNDER_FLASK_CLI:
    # In the gunicorn worker (no preload: this runs after the fork): the AMI listener greenlet, unless
    # PBX_AMI_LISTENER=off, and the NOTIFY forwarder that feeds this worker's live pages.
    import gevent

    from pbxweb.admission import TakingTurns
    from pbxweb.ami.listener import start_in_background
    from pbxweb.cdr import kept

    start_in_background(app)
    gevent.spawn(kept.warm, app)
    # A few requests at a time, so that live pushes never wait behind fifty of them.
    app.wsgi_app = TakingTurns(app.wsgi_app)
