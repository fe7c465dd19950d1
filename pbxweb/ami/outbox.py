"""Sends the AMI follow-ups that committed changes left in pbx_ami_outbox (see realtime/followups.py).

Rows are deleted only once Asterisk has answered them, so a change saved while AMI is down is applied
when it is reachable again: at the next change, when `drain` runs at the listener's (re)connect, or when
a caller leaves a queue (a queue rebuild waits for its queue to be empty).
"""

import logging
import threading

import sqlalchemy as sa

from ..models import AmiOutbox
from ..realtime.followups import ORDER_QUEUE, REBUILD_QUEUE
from .actions import configured, connect
from .client import AmiError

log = logging.getLogger(__name__)
outbox_t = AmiOutbox.__table__
BATCH = 50


def pending_note(session, *, queue: str | None = None) -> str | None:
    """What to tell an admin whose saved change still waits for AMI, or None. `queue`: the group's queue,
    whose switch to hunt waits for its callers."""
    from ..live.store import ami_status
    from ..models import WaitingCall

    if queue is not None:
        rebuild = sa.select(outbox_t.c.id).where(outbox_t.c.action == REBUILD_QUEUE, outbox_t.c.fields["Queue"].as_string() == queue)
        if session.scalar(rebuild.limit(1)) is None:
            return None
        callers = session.scalar(sa.select(sa.func.count()).where(WaitingCall.queue == queue))
        if callers:
            return (f"saved; {callers} caller{'s are' if callers > 1 else ' is'} waiting in this group: Asterisk "
                    "switches a queue to hunt only while it is empty, so hunt applies as soon as they have left")
        return "saved; Asterisk reloads this group's queue to switch it to hunt, within seconds"
    pending = session.scalar(sa.select(sa.func.count()).select_from(outbox_t))
    if pending and not ami_status(session)["connected"]:
        return ("saved; Asterisk is not reachable over AMI right now, so the part it cannot read from the "
                "database (the trunk's registration) is applied as soon as it is")
    return None


# Set in a session whose commit leaves actions in the outbox: realtime/hooks.py drains after that commit.
KICK_AFTER_COMMIT = "ami_outbox"


def enqueue(session, action: str, fields: dict) -> None:
    """An action to send once this session commits (and, while AMI is down, as soon as it is back)."""
    session.add(AmiOutbox(action=action, fields=fields))
    session.info[KICK_AFTER_COMMIT] = True


def kick(app) -> None:
    """Drain in the background, so that a save never waits on AMI (a greenlet under gevent's patch)."""
    if app.config.get("AMI_OUTBOX_AUTODRAIN", True):
        threading.Thread(target=drain, args=(app,), name="ami-outbox", daemon=True).start()


def drain(app) -> int:
    """Send every pending action; returns how many are done. Stops at the first AMI failure; a queue rebuild
    held because callers wait stays pending and the rest go on."""
    from ..ext import db

    config = app.config
    if not configured(config):
        return 0
    sent = 0
    after_id = 0
    with app.app_context():
        engine = db.engine
        ami = None
        try:
            with engine.connect() as conn:
                while True:
                    with conn.begin():
                        query = sa.select(outbox_t).where(outbox_t.c.id > after_id).order_by(outbox_t.c.id).limit(BATCH)
                        if engine.dialect.name == "postgresql":
                            # Two drains at once (two workers) send each action once.
                            query = query.with_for_update(skip_locked=True)
                        rows = conn.execute(query).all()
                        if not rows:
                            return sent
                        if ami is None:
                            ami = connect(config)
                        for row in rows:
                            after_id = row.id
                            try:
                                held = _send(app, engine, ami, row)
                            except AmiError as exc:
                                _note(conn, row.id, str(exc))
                                raise
                            if held:
                                _note(conn, row.id, held)
                                continue
                            conn.execute(sa.delete(outbox_t).where(outbox_t.c.id == row.id))
                            sent += 1
        except AmiError as exc:
            log.warning("AMI follow-ups left pending: %s", exc)
            return sent
        finally:
            if ami is not None:
                ami.close()


def _note(conn, row_id: int, message: str) -> None:
    conn.execute(
        sa.update(outbox_t).where(outbox_t.c.id == row_id)
        .values(attempts=outbox_t.c.attempts + 1, last_error=message[:500])
    )


def _send(app, engine, ami, row) -> str | None:
    """Carry out one pending action; returns why it is held back, or None when it is done."""
    if row.action == REBUILD_QUEUE:
        return rebuild_queue(app, engine, ami, row.fields["Queue"])
    if row.action == ORDER_QUEUE:
        return order_queue(app, engine, ami, row.fields["Queue"])
    response = ami.action(row.action, row.fields)
    if response.response != "Success":
        # Delivered, and refused: retrying cannot help (an unknown cache, say).
        log.warning("AMI %s %s: %s", row.action, row.fields, response.get("Message"))
    return None


def waiting_callers(ami, queue: str) -> int:
    """How many callers Asterisk has waiting in this queue right now."""
    return callers_in(ami.action("QueueStatus", {"Queue": queue}).events)


def callers_in(status_events) -> int:
    """The callers a QueueStatus answer lists (its QueueEntry events)."""
    return sum(1 for event in status_events if event.event == "QueueEntry")


def held(callers: int, queue: str, what: str) -> str:
    """Why a queue's rebuild or reordering waits: a caller would be rung by a queue short of its members."""
    return f"held: {callers} caller{'s' if callers > 1 else ''} waiting in {queue}; {what} applies as soon as the queue is empty"


def rebuild_queue(app, engine, ami, queue: str) -> str | None:
    """Make Asterisk load a realtime queue afresh, so a switch to linear (hunt) takes effect with no restart:
    delete its row, ask QueueStatus for it (the lookup finds no row and drops the queue from memory), put the
    row back, ask again (the queue is built anew with its realtime members). Only while no caller waits: a
    caller in the dropped queue object would stay there, invisible to every panel. Returns why it is held."""
    from ..live.state import group_of
    from ..realtime.mapping import RealtimeSettings
    from ..realtime.store import Owner, detach_queue, reconcile_owners

    callers = waiting_callers(ami, queue)
    if callers:
        return held(callers, queue, "the switch to hunt")
    group_id = group_of(queue)
    settings = RealtimeSettings.from_config(app.config)
    try:
        with engine.begin() as conn:
            detach_queue(conn, queue)
        ami.action("QueueStatus", {"Queue": queue})
    finally:
        # Whatever failed above, the queue's row goes back (a moment without it is a caller finding no queue).
        with engine.begin() as conn:
            reconcile_owners(conn, settings, {Owner("group", group_id)})
    ami.action("QueueStatus", {"Queue": queue})
    # Loaded fresh, it holds its members in the order of their interfaces: now the app's.
    return order_queue(app, engine, ami, queue)


def order_queue(app, engine, ami, queue: str) -> str | None:
    """Make a hunt queue Asterisk has loaded ring its members in the app's order (realtime/ring_order.py): the
    members out of place are taken out of the table (a lookup drops them) and put back one by one, a lookup
    after each (Asterisk appends it), their rows whole, so the pause Asterisk wrote stays. Only while no caller
    waits, like a rebuild: a caller would be rung by a queue short of members. Returns why it is held."""
    from ..live.state import group_of
    from ..realtime.mapping import RealtimeSettings
    from ..realtime.ring_order import LINEAR, reorder_plan, reported_ring_order
    from ..realtime.store import Owner, put_back_member, reconcile_owners, ring_orders, take_out_members

    status = ami.action("QueueStatus", {"Queue": queue}).events
    strategy, current = reported_ring_order(status)
    if strategy != LINEAR:
        return None  # not a hunt queue in Asterisk's memory: gone, or its rebuild (which ends here) is pending
    group_id = group_of(queue)
    settings = RealtimeSettings.from_config(app.config)
    with engine.connect() as conn:
        wanted = ring_orders(conn, settings, [group_id]).get(queue, [])
    moving = reorder_plan(current, wanted)
    if not moving:
        return None
    callers = callers_in(status)
    if callers:
        return held(callers, queue, "its new ringing order")
    try:
        with engine.begin() as conn:
            rows = take_out_members(conn, queue, moving)
        ami.action("QueueStatus", {"Queue": queue})
        for row in rows:
            with engine.begin() as conn:
                put_back_member(conn, row)
            ami.action("QueueStatus", {"Queue": queue})
    finally:
        # Whatever failed above, every member's row is back (a member left out would never be rung).
        with engine.begin() as conn:
            reconcile_owners(conn, settings, {Owner("group", group_id)})
    return None


def check_ring_orders(engine) -> None:
    """After Asterisk (re)loaded every queue in the order of its members' interfaces (the listener's
    snapshot): put each hunt queue in the app's order, unless a check of it is pending already."""
    from ..realtime.store import hunt_group_ids

    with engine.begin() as conn:
        pending = set(conn.execute(sa.select(outbox_t.c.fields["Queue"].as_string())
                                   .where(outbox_t.c.action.in_((ORDER_QUEUE, REBUILD_QUEUE)))).scalars())
        queues = [f"extgroup_{group_id}" for group_id in hunt_group_ids(conn)]
        due = [{"action": ORDER_QUEUE, "fields": {"Queue": queue}} for queue in queues if queue not in pending]
        if due:
            conn.execute(sa.insert(outbox_t), due)
