"""`pbx sync`: recompute every realtime row from the models and reconcile the tables, in one transaction.

On PostgreSQL a full sync first locks the models' tables and the synced realtime tables (SHARE ROW
EXCLUSIVE: no admin, API call or hand-written SQL changes them meanwhile, and two syncs take turns), so it
reconciles one consistent picture. Every statement that writes one of those tables, whoever runs it, takes a
number from the sequence `pbx_sync_changes` (statement triggers, migration 5c1d7e2f9a30); a sync records the
number it left the tables at. When nothing has taken a number since, and the settings that shape the rows
are the same, the tables are exactly as that sync left them: the sync answers from its record instead of
reading 30,000 rows again to find nothing to do.
"""

import json

import sqlalchemy as sa

from ..models import SyncState
from . import store
from .diff import TableChanges
from .mapping import RealtimeSettings
from .schema import SYNCED_TABLES

MODEL_TABLES = ("pbx_extensions", "pbx_groups", "pbx_group_members", "pbx_dids", "pbx_trunks")
state_t = SyncState.__table__


def _lock(conn) -> None:
    tables = ", ".join((*MODEL_TABLES, *SYNCED_TABLES))
    conn.exec_driver_sql(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def _changes_now(conn) -> int:
    return conn.exec_driver_sql("SELECT last_value FROM pbx_sync_changes").scalar_one()


def _recorded(conn, settings: RealtimeSettings, prune: bool) -> list[TableChanges] | None:
    """The last full sync's outcome, if nothing has written the tables since; None otherwise."""
    row = conn.execute(sa.select(state_t).where(state_t.c.id == 1)).first()
    if row is None or row.changes != _changes_now(conn) or row.settings != repr(settings):
        return None
    summary = json.loads(row.summary)
    if prune and any(s["extras"] for s in summary.values()):
        return None  # the unowned rows it kept are to be deleted now
    return [TableChanges(table, unchanged=s["unchanged"], extras=[tuple(k) for k in s["extras"]])
            for table, s in summary.items()]


def _record(conn, settings: RealtimeSettings, plan: list[TableChanges], prune: bool) -> None:
    """What the tables hold now: every row as the models want it, and the unowned rows kept."""
    summary = {
        c.table: {"unchanged": c.unchanged + len(c.inserts) + len(c.updates), "extras": [] if prune else c.extras}
        for c in plan
    }
    values = {"changes": _changes_now(conn), "settings": repr(settings), "summary": json.dumps(summary)}
    updated = conn.execute(sa.update(state_t).where(state_t.c.id == 1).values(values)).rowcount
    if not updated:
        conn.execute(sa.insert(state_t).values(id=1, **values))


def run(conn, settings: RealtimeSettings, tables, *, dry_run: bool, prune: bool, progress=iter) -> list[TableChanges]:
    """Plan (and unless `dry_run`, write) each table's changes inside the caller's transaction; returns
    them. `progress` wraps the iteration over the tables (a progress bar)."""
    remembers = tables == SYNCED_TABLES and conn.dialect.name == "postgresql"
    if remembers:
        _lock(conn)
        recorded = _recorded(conn, settings, prune)
        if recorded is not None:
            return recorded
    wanted = store.desired_rows(conn, settings)
    plan = []
    for table in progress(tables):
        changes = store.plan_table(conn, table, wanted.get(table, []))
        if not dry_run:
            store.write_changes(conn, changes, delete_extras=prune)
        plan.append(changes)
    if remembers and not dry_run:
        _record(conn, settings, plan, prune)
    return plan
