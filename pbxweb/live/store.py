"""Writes the live picture into the state tables, in the listener's transaction, and reads it for the API.

The listener calls these with the changes a batch of events made (coalesced: one transaction per batch,
not per event), or with a whole new picture after a (re)connect.
"""

from datetime import datetime, timezone

import sqlalchemy as sa

from ..models import AmiStatus, Extension, ExtensionGroup, GroupMember, TrunkRegistration, WaitingCall, as_utc
from ..models import ExtensionStatus as ExtensionStatusRow
from ..paging import PageRequest, contains, fetch_page
from ..service_base import upsert_insert
from .state import Changed, LiveState, group_of

status_t = ExtensionStatusRow.__table__
waiting_t = WaitingCall.__table__
ami_t = AmiStatus.__table__
member_t = GroupMember.__table__
ext_t = Extension.__table__
registration_t = TrunkRegistration.__table__


def now() -> datetime:
    return datetime.now(timezone.utc)


def extension_row(status, at: datetime) -> dict:
    contact = status.contact
    return {
        "number": status.number,
        "registration": status.registration,
        "device_state": status.device_state,
        "calls": len(status.channels),
        "contact_uri": contact.uri if contact else None,
        "user_agent": contact.user_agent if contact else None,
        "roundtrip_usec": contact.roundtrip_usec if contact else None,
        "queues": {q: {"paused": m.paused, "reason": m.reason, "in_call": m.in_call, "paused_since": m.paused_since}
                   for q, m in status.queues.items()},
        "voicemail_new": status.mailbox.new if status.mailbox else None,
        "voicemail_old": status.mailbox.old if status.mailbox else None,
        "updated_at": at,
    }


def waiting_row(call) -> dict:
    return {
        "uniqueid": call.uniqueid,
        "channel": call.channel,
        "linkedid": call.linkedid,
        "caller_number": call.caller_number[:80],
        "caller_name": call.caller_name[:80],
        "queue": call.queue,
        "group_id": call.group_id,
        "position": call.position,
        "joined_at": datetime.fromtimestamp(call.joined_at, timezone.utc),
    }


def _upsert(conn, table, rows: list[dict], key: str) -> None:
    if not rows:
        return
    statement = upsert_insert(conn.dialect.name, table)
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={c: statement.excluded[c] for c in rows[0] if c != key}
    )
    conn.execute(statement, rows)


def _follow_pauses(conn, pauses) -> None:
    """Asterisk's pause state is the truth: the group member model follows it (no realtime write needed,
    Asterisk has already written its own row)."""
    rows = [
        {"g": group_of(queue), "n": number, "p": paused}
        for queue, number, paused, _ in pauses
        if group_of(queue) is not None
    ]
    if rows:
        conn.execute(
            sa.update(member_t)
            .where(member_t.c.group_id == sa.bindparam("g"))
            .where(member_t.c.extension_id == sa.select(ext_t.c.id).where(ext_t.c.number == sa.bindparam("n")).scalar_subquery())
            .values(paused=sa.bindparam("p")),
            rows,
        )


def write_changes(conn, state: LiveState, changed: Changed) -> None:
    at = now()
    present = [n for n in changed.extensions if n in state.extensions]
    gone = [n for n in changed.extensions if n not in state.extensions]
    _upsert(conn, status_t, [extension_row(state.extensions[n], at) for n in sorted(present)], "number")
    if gone:
        conn.execute(sa.delete(status_t).where(status_t.c.number.in_(gone)))
    waiting = [u for u in changed.waiting if u in state.waiting]
    left = [u for u in changed.waiting if u not in state.waiting]
    _upsert(conn, waiting_t, [waiting_row(state.waiting[u]) for u in sorted(waiting)], "uniqueid")
    if left:
        conn.execute(sa.delete(waiting_t).where(waiting_t.c.uniqueid.in_(left)))
    _follow_pauses(conn, changed.pauses)
    _upsert(conn, registration_t, [registration_row(state.registrations[u]) for u in sorted(changed.registrations)],
            "client_uri")


def registration_row(registration) -> dict:
    return {"client_uri": registration.client_uri[:255], "server_uri": registration.server_uri[:255],
            "status": registration.status[:40], "cause": registration.cause[:255] or None,
            "at": datetime.fromtimestamp(registration.at, timezone.utc)}


def replace_all(conn, state: LiveState) -> None:
    """The picture after a (re)connect replaces the stored one: nothing of the old one survives (but the
    registrations' last outcomes, which no snapshot reports and the next attempt's event replaces)."""
    at = now()
    conn.execute(sa.delete(status_t))
    conn.execute(sa.delete(waiting_t))
    if state.extensions:
        conn.execute(sa.insert(status_t), [extension_row(s, at) for s in state.extensions.values()])
    if state.waiting:
        conn.execute(sa.insert(waiting_t), [waiting_row(c) for c in state.waiting.values()])
    _follow_pauses(
        conn,
        [(queue, s.number, m.paused, m.reason) for s in state.extensions.values() for queue, m in s.queues.items()],
    )


def set_ami_status(conn, **values) -> None:
    values.setdefault("heartbeat_at", now())
    _upsert(conn, ami_t, [{"id": 1, **values}], "id")


# --- reading, for the API and the pages ----------------------------------------------------------------

# A listener beats every few seconds; one silent for longer is gone, and what it left is stale.
HEARTBEAT_STALE_SECONDS = 20


def ami_status(session) -> dict:
    row = session.get(AmiStatus, 1)
    if row is None:
        return {"connected": False, "since": None, "asterisk_version": None, "last_error": "no listener has run yet",
                "retry_in": None, "stale": True, "listener": None}
    heartbeat = as_utc(row.heartbeat_at)
    alive = heartbeat is not None and (now() - heartbeat).total_seconds() < HEARTBEAT_STALE_SECONDS
    connected = bool(row.connected and alive)
    return {
        "connected": connected,
        "since": row.since and as_utc(row.since).isoformat(),
        "asterisk_version": row.asterisk_version,
        "last_error": row.last_error if not connected else None,
        "retry_in": row.retry_in if not connected and alive else None,
        "stale": not connected,
        "listener": row.listener if alive else None,
    }


def visible_group_ids(session, user) -> set[int] | None:
    """None for roles that see everything; an agent sees only the groups its own extension belongs to."""
    if user.role != "agent":
        return None
    if user.extension_id is None:
        return set()
    return set(session.scalars(sa.select(member_t.c.group_id).where(member_t.c.extension_id == user.extension_id)))


def extension_statuses(session, group_ids: set[int] | None, page: PageRequest) -> tuple[list[dict], int, str | None]:
    """One page of extensions (by number) with what Asterisk last said of each, the total, the next cursor."""
    query = (
        sa.select(ext_t.c.number, ext_t.c.name, ext_t.c.is_active, status_t)
        .select_from(ext_t.outerjoin(status_t, status_t.c.number == ext_t.c.number))
    )
    if group_ids is not None:
        members = sa.select(member_t.c.extension_id).where(member_t.c.group_id.in_(group_ids))
        query = query.where(ext_t.c.id.in_(members))
    if page.q:
        query = query.where(sa.or_(contains(ext_t.c.number, page.q), contains(ext_t.c.name, page.q)))
    found = fetch_page(session, query, (ext_t.c.number,), page)
    result = []
    for row in found.rows:
        result.append({
            "number": row.number,
            "name": row.name,
            "registration": row.registration or "offline",
            "device_state": row.device_state or ("UNAVAILABLE" if row.registration is None else "UNKNOWN"),
            "calls": row.calls or 0,
            "contact_uri": row.contact_uri,
            "user_agent": row.user_agent,
            "queues": row.queues or {},
            "voicemail_new": row.voicemail_new,
            "voicemail_old": row.voicemail_old,
        })
    return result, found.total, found.next_cursor


# What a row, a card or the API shows of an extension's state.
STATUS_COLUMNS = (status_t.c.registration, status_t.c.device_state, status_t.c.calls, status_t.c.updated_at,
                  status_t.c.queues, status_t.c.voicemail_new)


def status_of(row) -> dict | None:
    """A row read with STATUS_COLUMNS as the pages show it; None when Asterisk said nothing of it."""
    if row.registration is None:
        return None
    return {"registration": row.registration, "device_state": row.device_state, "calls": row.calls,
            "updated_at": as_utc(row.updated_at), "pause": pause_of(row.queues or {}), "voicemail_new": row.voicemail_new}


def statuses_of(session, numbers: list[str]) -> dict[str, dict]:
    """What Asterisk last said of these extensions (those it said nothing of are absent): for a page's rows."""
    if not numbers:
        return {}
    rows = session.execute(sa.select(status_t.c.number, *STATUS_COLUMNS).where(status_t.c.number.in_(numbers)))
    return {r.number: status_of(r) for r in rows}


def pause_of(queues: dict) -> dict | None:
    """An extension's pause as people say it, from its queue memberships: the reason and since when (the
    earliest pause), and whether it is paused in every group it is in or only some; None when not paused."""
    paused = [m for m in queues.values() if m.get("paused")]
    if not paused:
        return None
    since = [m["paused_since"] for m in paused if m.get("paused_since")]
    began = datetime.fromtimestamp(min(since), timezone.utc) if since else None
    reasons = sorted({m.get("reason") or "" for m in paused} - {""})
    return {"reason": ", ".join(reasons), "since": began,
            "minutes": max(0, int((now() - began).total_seconds() // 60)) if began else None,
            "everywhere": len(paused) == len(queues)}


def waiting_calls(session, group_ids: set[int] | None) -> list[dict]:
    group_t = ExtensionGroup.__table__
    query = (
        sa.select(waiting_t, group_t.c.name.label("group_name"))
        .select_from(waiting_t.outerjoin(group_t, group_t.c.id == waiting_t.c.group_id))
        .order_by(waiting_t.c.group_id, waiting_t.c.position)
    )
    if group_ids is not None:
        query = query.where(waiting_t.c.group_id.in_(group_ids))
    at = now()
    result = []
    for row in session.execute(query):
        joined = as_utc(row.joined_at)
        result.append({
            "channel": row.channel,
            "uniqueid": row.uniqueid,
            "linkedid": row.linkedid,
            "caller_number": row.caller_number,
            "caller_name": row.caller_name,
            "group_id": row.group_id,
            "group_name": row.group_name,
            "queue": row.queue,
            "position": row.position,
            "joined_at": joined.isoformat(),
            "seconds_waiting": max(0, int((at - joined).total_seconds())),
        })
    return result


def registrations(session, client_uris: list[str]) -> dict[str, dict]:
    """The last outcome Asterisk reported of these outbound registrations, by client URI (absent: none seen)."""
    if not client_uris:
        return {}
    rows = session.execute(sa.select(registration_t).where(registration_t.c.client_uri.in_(sorted(set(client_uris)))))
    return {r.client_uri: {"status": r.status, "cause": r.cause, "at": as_utc(r.at)} for r in rows}
