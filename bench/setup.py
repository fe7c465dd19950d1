"""What every bench starts with: a throwaway PostgreSQL cluster, a database on it, the app on that database
with the schema migrated — and everything stopped afterwards."""

from contextlib import contextmanager

from flask_migrate import upgrade

from pbxweb import create_app
from tests.conftest import app_config, make_database
from tests.pgcluster import Cluster


@contextmanager
def bench_app(database: str, **config):
    """`with bench_app("pbx_bench") as (app, url):` — the app (settings `config` on top of the tests' own)
    and its database URL."""
    cluster = Cluster()
    server = cluster.start()
    try:
        url = make_database(server, database)
        app = create_app(app_config(url, **config))
        with app.app_context():
            upgrade()
        yield app, url
    finally:
        cluster.stop()
