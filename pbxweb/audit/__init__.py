"""The audit log: every create, update and delete of what an admin manages — from a page, the API or the
CLI — recorded with who, when, which object and which fields changed (old → new), in the same transaction
as the change itself. Secrets are recorded as "changed", never their value. Secrets taken away (a download
of SIP passwords) are recorded too, by `record`.

Like the realtime rows, it is written in `after_flush` with Core SQL on the flush's own connection: the
change and its record commit or roll back together.
"""

from datetime import date, datetime

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..models import ApiToken, AuditEntry, Did, Extension, ExtensionGroup, GroupMember, Trunk, User, utcnow

# model → (object type shown in the log, the field that names an object, fields whose values are secret)
AUDITED = {
    Extension: ("extension", "number", {"sip_password"}),
    ExtensionGroup: ("group", "name", set()),
    Did: ("DID", "number", set()),
    Trunk: ("trunk", "name", {"password"}),
    User: ("user", "username", {"password_hash"}),
    ApiToken: ("token", "label", {"token_hash"}),
}
# What changes no model but is recorded all the same.
SIP_PASSWORDS = "SIP passwords"
OBJECT_TYPES = (*(object_type for object_type, _, _ in AUDITED.values()), SIP_PASSWORDS)
# Bookkeeping, not an admin's change.
IGNORED_FIELDS = {"id", "created_at"}
# Internal ids are recorded as what a person knows them by (an extension's number, a group's name).
SHOWN_AS = {"password_hash": "password", "extension_id": "extension", "destination_id": "destination",
            "sip_password": "SIP password", "user_id": "user", "token_hash": "token"}


def _shown(session: Session, obj, key: str, value):
    """A value as the log shows it: what an id stands for, dates as text."""
    if value is None:
        return None
    if key == "extension_id" or (key == "destination_id" and getattr(obj, "destination_type", None) == "extension"):
        extension = session.get(Extension, value)
        return extension.number if extension is not None else value
    if key == "user_id":
        user = session.get(User, value)
        return user.username if user is not None else value
    if key == "destination_id":
        group = session.get(ExtensionGroup, value)
        return f"group {group.name}" if group is not None else value
    return _plain(value)


# Fields as the forms name them.
LABELS = {
    "number": "Number", "name": "Name", "email": "E-mail", "SIP password": "SIP password", "context": "Dialplan context",
    "codecs": "Codecs", "voicemail": "Voicemail", "max_contacts": "Phones at once", "is_active": "Active",
    "ring_strategy": "Ring strategy", "ring_timeout": "Ring time (s)", "musicclass": "Music on hold",
    "max_wait": "Longest wait (s)", "destination_type": "Destination type", "destination": "Destination",
    "description": "Description", "host": "Host", "port": "Port", "username": "User name", "password": "Password",
    "transport": "Transport", "register": "Registers", "match": "Calls from", "role": "Role",
    "extension": "Own extension",
}


def _word(value) -> str:
    if value is None or value == "":  # an empty value read as "Calls from: ;"
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def describe(changes: dict) -> list[str]:
    """An entry's changes as a person reads them: "Active: yes → no", "SIP password changed"."""
    lines = []
    for field, change in changes.items():
        label = LABELS.get(field, field[:1].upper() + field[1:])
        if isinstance(change, str):
            lines.append(f"{label} {change}")
        elif change[0] is None:
            lines.append(f"{label}: {_word(change[1])}")
        else:
            lines.append(f"{label}: {_word(change[0])} → {_word(change[1])}")
    return lines


def _actor() -> str:
    return g.get("actor", "cli") if has_request_context() else "cli"


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _changes(session: Session, obj, secret: set[str], creating: bool) -> dict:
    state = sa.inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in IGNORED_FIELDS:
            continue
        history = state.attrs[key].history
        name = SHOWN_AS.get(key, key)
        if creating:
            new = getattr(obj, key)
            if new is not None:
                changes[name] = "set" if key in secret else [None, _shown(session, obj, key, new)]
        elif history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old != new:
                changes[name] = "changed" if key in secret else [_shown(session, obj, key, old), _shown(session, obj, key, new)]
    return changes


def _member_entries(member: GroupMember, session: Session) -> list[tuple[str, dict]]:
    """A member added or removed is an entry of its own in its group's log; a change of penalty, pause or
    place joins the group's other changes of the same flush. Positions count from 1, as the page shows them."""
    # Taken by id: a member removed from its group's list no longer points at the group.
    group = session.get(ExtensionGroup, member.group_id) if member.group_id is not None else None
    extension = session.get(Extension, member.extension_id) if member.extension_id is not None else None
    number = extension.number if extension is not None else str(member.extension_id)
    if group is None or group in session.deleted:
        return []  # the group's own deletion says it all
    if member in session.new:
        return [(group.name, {f"member {number}": [None, f"added (penalty {member.penalty})"]})]
    # Taken out of the group's list, it is deleted as an orphan during this flush without ever being in
    # session.deleted.
    if member in session.deleted or member.group is None:
        # Said as a sentence ("Member 2004 removed"): an old → new pair read "member → removed".
        return [(group.name, {f"member {number}": "removed"})]
    changes = {}
    for key, (old, new) in _changes(session, member, set(), False).items():
        if key == "position":
            old, new = (None if old is None else old + 1), (None if new is None else new + 1)
        if key in ("penalty", "paused", "position"):
            changes[f"member {number} {key}"] = [old, new]
    return [(group.name, changes | {MERGED: True})] if changes else []


# Marks the member changes that share their group's one entry.
MERGED = object()


def _after_flush(session: Session, flush_context) -> None:
    rows = []
    at = utcnow()
    actor = _actor()
    member_changes: dict[str, dict] = {}
    for collection, action in ((session.new, "create"), (session.dirty, "update"), (session.deleted, "delete")):
        for obj in collection:
            if isinstance(obj, GroupMember):
                for group_name, changes in _member_entries(obj, session):
                    if changes.pop(MERGED, False):
                        member_changes.setdefault(group_name, {}).update(changes)
                    else:
                        rows.append({"at": at, "actor": actor, "action": "update", "object_type": "group",
                                     "object_key": group_name[:100], "changes": changes})
                continue
            audited = AUDITED.get(type(obj))
            if audited is None:
                continue
            object_type, naming, secret = audited
            changes = {} if action == "delete" else _changes(session, obj, secret, action == "create")
            if action == "update" and not changes:
                continue
            key = getattr(obj, naming)
            if action == "update" and isinstance(changes.get(naming), list):
                # A rename is recorded under the name the object had, and says what it became.
                key = changes[naming][0]
            rows.append({"at": at, "actor": actor, "action": action, "object_type": object_type,
                         "object_key": str(key)[:100], "changes": changes})
    for group_name, changes in member_changes.items():
        rows.append({"at": at, "actor": actor, "action": "update", "object_type": "group",
                     "object_key": group_name[:100], "changes": changes})
    if rows:
        session.connection().execute(sa.insert(AuditEntry.__table__), rows)


def record(action: str, object_type: str, object_key: str, changes: dict) -> None:
    """An entry for what no model column shows (a secret mailed, passwords downloaded, a voicemail PIN that
    lives only in Asterisk's row), in the caller's transaction: it commits with whatever the caller commits."""
    from ..ext import db

    db.session.execute(sa.insert(AuditEntry.__table__).values(
        at=utcnow(), actor=_actor(), action=action[:10], object_type=object_type, object_key=str(object_key)[:100],
        changes=changes))


def init_app(app) -> None:
    from ..ext import db

    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
