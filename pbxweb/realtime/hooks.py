"""SQLAlchemy session events that write Asterisk's rows in the same transaction as the model change.

`after_flush` still sees what the flush changed (new/dirty/deleted and each attribute's old value), and the
flush has already written the models, so the rows are recomputed from the database state on the same
connection: a rollback takes the model change and its Asterisk rows back together.
"""

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..ami.outbox import KICK_AFTER_COMMIT
from ..live.state import group_of
from ..models import AmiOutbox, Did, Extension, ExtensionGroup, GroupMember, Trunk
from . import store
from .followups import followup_actions
from .mapping import RealtimeSettings
from .store import Owner

SYNCED_MODELS = (Extension, ExtensionGroup, GroupMember, Did, Trunk)


def _old_value(obj, attr: str):
    history = sa.inspect(obj).attrs[attr].history
    return history.deleted[0] if history.deleted else getattr(obj, attr)


def _affected(session: Session) -> tuple[set[Owner], list[tuple[str, str, str]]]:
    owners: set[Owner] = set()
    renames = []
    extension_ids = set()
    group_ids = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Extension):
            old, new = _old_value(obj, "number"), obj.number
            if old != new and obj not in session.new:
                renames.append(("extension", old, new))
                owners.add(Owner("extension", old))
            owners.add(Owner("extension", new))
            if obj.id is not None:
                extension_ids.add(obj.id)
        elif isinstance(obj, Trunk):
            old, new = _old_value(obj, "name"), obj.name
            if old != new and obj not in session.new:
                renames.append(("trunk", old, new))
                owners.add(Owner("trunk", old))
            owners.add(Owner("trunk", new))
        elif isinstance(obj, ExtensionGroup):
            group_ids.add(obj.id)
        elif isinstance(obj, GroupMember):
            group_ids.add(_old_value(obj, "group_id"))
            group_ids.add(obj.group_id)
        elif isinstance(obj, Did):
            owners.add(Owner("did", _old_value(obj, "number")))
            owners.add(Owner("did", obj.number))
    conn = session.connection()
    if extension_ids:
        # An extension's number, name and state show in the queues it is a member of and the DIDs that
        # ring it.
        rows = conn.execute(
            sa.select(GroupMember.group_id).where(GroupMember.extension_id.in_(extension_ids))
        )
        group_ids.update(r.group_id for r in rows)
        rows = conn.execute(
            sa.select(Did.number).where(
                Did.destination_type == "extension", Did.destination_id.in_(extension_ids)
            )
        )
        owners.update(Owner("did", r.number) for r in rows)
    group_ids.discard(None)
    if group_ids:
        owners.update(Owner("group", gid) for gid in group_ids)
        rows = conn.execute(
            sa.select(Did.number).where(Did.destination_type == "group", Did.destination_id.in_(group_ids))
        )
        owners.update(Owner("did", r.number) for r in rows)
    return owners, renames


def _reordered_hunt_queues(session: Session, conn, changed) -> set[str]:
    """The hunt queues whose ringing order Asterisk may no longer have: a member added or moved, or a member
    row written anew (an extension activated). Asterisk puts a member it finds in a loaded queue last."""
    group_ids = {
        obj.group_id for obj in (*session.new, *session.dirty)
        if isinstance(obj, GroupMember) and (obj in session.new or sa.inspect(obj).attrs["position"].history.has_changes())
    }
    members = changed.get("asterisk_queue_members")
    group_ids.update(group_of(row["queue_name"]) for row in (members.inserts if members else ()))
    group_ids.discard(None)
    if not group_ids:
        return set()
    return {f"extgroup_{group_id}" for group_id in store.hunt_group_ids(conn) if group_id in group_ids}


def _after_flush(session: Session, flush_context) -> None:
    if not any(isinstance(o, SYNCED_MODELS) for o in (*session.new, *session.dirty, *session.deleted)):
        return
    owners, renames = _affected(session)
    conn = session.connection()
    settings = RealtimeSettings.from_config(current_app.config)
    for kind, old, new in renames:
        store.move_rows(conn, settings, kind, old, new)
    changed = store.reconcile_owners(conn, settings, owners)
    actions = followup_actions(changed, {old for _, old, _ in renames}, current_app.config["PBX_SORCERY_CACHE"],
                               _reordered_hunt_queues(session, conn, changed))
    if actions:
        conn.execute(sa.insert(AmiOutbox.__table__), [{"action": a, "fields": f} for a, f in actions])
        session.info[KICK_AFTER_COMMIT] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(KICK_AFTER_COMMIT, False):
        from ..ami import outbox

        outbox.kick(current_app._get_current_object())


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(KICK_AFTER_COMMIT, None)


def _refuse_bulk_writes(orm_execute_state) -> None:
    # Bulk UPDATE/DELETE statements skip the flush, so their Asterisk rows would silently go stale.
    if orm_execute_state.is_update or orm_execute_state.is_delete:
        mapper = orm_execute_state.bind_mapper
        if mapper is not None and mapper.class_ in SYNCED_MODELS:
            raise RuntimeError(
                f"bulk {'update' if orm_execute_state.is_update else 'delete'} of {mapper.class_.__name__} "
                "bypasses the realtime sync: load the objects and change them instead"
            )


def init_app(app) -> None:
    from ..ext import db

    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_soft_rollback", _after_soft_rollback)
        event.listen(db.session, "do_orm_execute", _refuse_bulk_writes)
