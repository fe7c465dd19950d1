"""What every bench starts with: a throwaway PostgreSQL cluster, a database on it, the app on that database
with the schema migrated — and everything stopped afterwards."""

from contextlib import contextmanager

from flask_migrate import upgrade

from pbxweb import create_app
from tests.conftest import app_config, make_database
from tests.pgcluster import Cluster


@contextmanager
def bench_app(database: str, server_options: str = "", **config):
    """`with bench_app("pbx_bench") as (app, url):` — the app (settings `config` on top of the tests' own)
    and its database URL; `server_options`: more `-c name=value` for PostgreSQL."""
    cluster = Cluster(server_options)
    server = cluster.start()
    try:
        url = make_database(server, database)
        app = create_app(app_config(url, **config))
        with app.app_context():
            upgrade()
        yield app, url
    finally:
        cluster.stop()


@contextmanager
def bench_app_with_ami(database: str, server_options: str = ""):
    """`with bench_app_with_ami("pbx_bench_x") as (app, url, ami):` — the app configured for the test AMI server,
    which replays the real captures on 127.0.0.1."""
    from tests.ami_server import AmiTestServer
    from tests.conftest import ASTERISK_FACTS

    ami = AmiTestServer(ASTERISK_FACTS / "ami")
    try:
        with bench_app(database, server_options, AMI_HOST="127.0.0.1", AMI_PORT=ami.port, AMI_USERNAME=ami.username,
                       AMI_SECRET=ami.secret) as (app, url):
            yield app, url, ami
    finally:
        ami.stop()
