"""Sends the AMI follow-ups that committed changes left in pbx_ami_outbox (see realtime/followups.py).

Rows are deleted only once Asterisk has answered them, so a change saved while AMI is down is applied
when it is reachable again: at the next change, or when `drain` runs at the listener's (re)connect.
"""

import logging
import threading

import sqlalchemy as sa

from ..models import AmiOutbox
from .actions import configured, connect
from .client import AmiError

log = logging.getLogger(__name__)
outbox_t = AmiOutbox.__table__
BATCH = 50


def pending_note(session) -> str | None:
    """What to tell an admin whose saved change still waits for AMI, or None."""
    from ..live.store import ami_status

    pending = session.scalar(sa.select(sa.func.count()).select_from(outbox_t))
    if pending and not ami_status(session)["connected"]:
        return ("saved; Asterisk is not reachable over AMI right now, so the part it cannot read from the "
                "database (the trunk's registration) is applied as soon as it is")
    return None


def kick(app) -> None:
    """Drain in the background, so that a save never waits on AMI (a greenlet under gevent's patch)."""
    if app.config.get("AMI_OUTBOX_AUTODRAIN", True):
        threading.Thread(target=drain, args=(app,), name="ami-outbox", daemon=True).start()


def drain(app) -> int:
    """Send every pending action; returns how many Asterisk answered. Stops at the first AMI failure."""
    from ..ext import db

    config = app.config
    if not configured(config):
        return 0
    sent = 0
    with app.app_context():
        engine = db.engine
        ami = None
        try:
            with engine.connect() as conn:
                while True:
                    with conn.begin():
                        query = sa.select(outbox_t).order_by(outbox_t.c.id).limit(BATCH)
                        if engine.dialect.name == "postgresql":
                            # Two drains at once (two workers) send each action once.
                            query = query.with_for_update(skip_locked=True)
                        rows = conn.execute(query).all()
                        if not rows:
                            return sent
                        if ami is None:
                            ami = connect(config)
                        for row in rows:
                            try:
                                response = ami.action(row.action, row.fields)
                            except AmiError as exc:
                                conn.execute(
                                    sa.update(outbox_t).where(outbox_t.c.id == row.id)
                                    .values(attempts=outbox_t.c.attempts + 1, last_error=str(exc)[:500])
                                )
                                raise
                            if response.response != "Success":
                                # Delivered, and refused: retrying cannot help (an unknown cache, say).
                                log.warning("AMI %s %s: %s", row.action, row.fields, response.get("Message"))
                            conn.execute(sa.delete(outbox_t).where(outbox_t.c.id == row.id))
                            sent += 1
        except AmiError as exc:
            log.warning("AMI follow-ups left pending: %s", exc)
            return sent
        finally:
            if ami is not None:
                ami.close()
