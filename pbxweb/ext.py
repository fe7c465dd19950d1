"""Flask extensions, created unbound and bound to the app in create_app()."""

import time

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

# Objects keep their values after a commit: reading them to answer a request must not go back to the
# database, which may have gone away in between (see service_base.commit).
db = SQLAlchemy(session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()

# A pooled connection idle this long is tried before use; one handed back a moment ago is not.
IDLE_BEFORE_PING = 1.0


def ping_idle_connections(engine) -> None:
    """A connection taken from the pool after sitting idle is tried first (SELECT 1) and replaced if the
    database dropped it meanwhile (a restart, an idle timeout), so no request fails on a dead one. Unlike
    SQLAlchemy's pool_pre_ping, which tries every one: under load, one more round trip for each request and
    each live push, for connections handed back milliseconds before."""

    @sa.event.listens_for(engine, "checkin")
    def handed_back(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def taken(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")  # none yet: connected just now
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 — any failure: the pool connects anew
            raise sa.exc.DisconnectionError(str(exc)) from exc
        finally:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 — a dead connection's cursor may not close
                pass
