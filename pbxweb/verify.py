"""The checks behind `pbx verify`: each returns (passed, label, hint)."""

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .ami import actions
from .ami.client import AmiError, AmiLoginError
from .ext import db
from .realtime import store
from .realtime.mapping import RealtimeSettings
from .realtime.ring_order import reported_ring_order, ring_order_mismatches
from .realtime.schema import SYNCED_TABLES, TABLES

Check = tuple[bool, str, str]


def _database(engine) -> Check:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return False, "database reachable", f"{type(exc.orig or exc).__name__}: check DATABASE_URL"
    return True, "database reachable", engine.url.render_as_string(hide_password=True)


def _migrations(app, engine) -> Check:
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    heads = set(script.get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return True, "migrations at head", ", ".join(sorted(heads))
    return False, "migrations at head", f"database at {', '.join(sorted(current)) or 'nothing'}: run `flask --app wsgi db upgrade`"


def _schema(engine) -> Check:
    inspector = sa.inspect(engine)
    missing = []
    for name, table in TABLES.items():
        if not inspector.has_table(name):
            missing.append(name)
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        missing += [f"{name}.{c.name}" for c in table.columns if c.name not in have]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        return False, "realtime tables and columns present", f"missing {shown}: run `flask --app wsgi db upgrade`"
    return True, "realtime tables and columns present", f"{len(TABLES)} tables"


def _drift(app, engine) -> list[Check]:
    settings = RealtimeSettings.from_config(app.config)
    with engine.connect() as conn:
        wanted = store.desired_rows(conn, settings)
        plans = {t: store.plan_table(conn, t, wanted.get(t, [])) for t in SYNCED_TABLES}
        logins = store.with_credentials(conn, [key[0] for key in plans["ps_auths"].extras])
    drifted = sum(len(p.inserts) + len(p.updates) for p in plans.values())
    unowned = sum(len(p.extras) for p in plans.values())
    note = f"; {unowned} row(s) no Mini-PBX object owns (kept)" if unowned else ""
    checks = []
    if drifted:
        checks.append((False, "realtime rows match the models", f"{drifted} row(s) missing or drifted: run `flask --app wsgi pbx sync`{note}"))
    else:
        checks.append((True, "realtime rows match the models", note.lstrip("; ")))
    # A password nobody manages is a SIP login that works although no extension or trunk has it any more.
    label = "no SIP credentials without an owner"
    if logins:
        shown = ", ".join(logins[:8]) + (" …" if len(logins) > 8 else "")
        checks.append((False, label, f"ps_auths {shown} still let a phone sign in: delete them, or run `flask --app wsgi pbx sync --prune`"))
    else:
        checks.append((True, label, ""))
    return checks


def _outbox(engine) -> Check:
    from .models import AmiOutbox

    table = AmiOutbox.__table__
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.action, table.c.created_at, table.c.last_error).order_by(table.c.id)).all()
    label = "changes that need AMI have reached Asterisk"
    if rows:
        # Each distinct reason once: "held: 2 callers waiting in extgroup_3; …", "cannot connect to AMI …".
        reasons = "; ".join(dict.fromkeys(r.last_error for r in rows if r.last_error))
        return False, label, f"{len(rows)} action(s) waiting since {rows[0].created_at:%Y-%m-%d %H:%M}" + (f" ({reasons})" if reasons else "")
    return True, label, ""


def _ami(app, engine) -> list[Check]:
    config = app.config
    where = f"{config['AMI_HOST']}:{config['AMI_PORT']}"
    if not actions.configured(config):
        return [(False, "AMI login", "AMI_USERNAME and AMI_SECRET are not set")]
    try:
        ami = actions.connect(config)
    except AmiLoginError as exc:
        return [(True, "AMI reachable", where), (False, "AMI login", str(exc))]
    except AmiError as exc:
        return [(False, "AMI reachable", str(exc))]
    checks = [(True, "AMI reachable", where)]
    with engine.connect() as conn:
        wanted = store.ring_orders(conn, RealtimeSettings.from_config(config), store.hunt_group_ids(conn))
    try:
        version = ami.action("CoreSettings").get("AsteriskVersion", "version unknown")
        checks.append((True, "AMI login", f"Asterisk {version}"))
        endpoints = ami.action("PJSIPShowEndpoints").events
        reported = {queue: reported_ring_order(ami.action("QueueStatus", {"Queue": queue}).events) for queue in wanted}
    except AmiError as exc:
        checks.append((False, "AMI answers actions", str(exc)))
        return checks
    finally:
        ami.close()
    with engine.connect() as conn:
        in_db = set(conn.execute(sa.select(TABLES["ps_endpoints"].c.id)).scalars())
    # Asterisk may also list endpoints of its own config file (the anonymous one): only ours must all be seen.
    seen = {e.get("ObjectName") for e in endpoints if e.event == "EndpointList"}
    unseen = sorted(in_db - seen)
    label = "Asterisk sees every endpoint in ps_endpoints"
    if unseen:
        shown = ", ".join(unseen[:8]) + (" …" if len(unseen) > 8 else "")
        hint = f"{len(unseen)} of {len(in_db)} not loaded ({shown}): check sorcery.conf maps endpoint to ps_endpoints"
        checks.append((False, label, hint))
    else:
        checks.append((True, label, f"{len(in_db)} in the database, {len(seen)} in Asterisk"))
    checks.append(_ring_order(wanted, reported))
    return checks


def _ring_order(wanted: dict[str, list[str]], reported: dict) -> Check:
    label = "hunt groups ring in the order the app shows"
    problems = ring_order_mismatches(wanted, reported)
    if problems:
        shown = "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
        return False, label, (f"{shown}: the AMI listener puts them in order when it connects, and every change "
                              "of a group's members does (see the AMI follow-ups above)")
    return True, label, f"{len(wanted)} hunt group(s)"


def run_checks(app) -> list[Check]:
    engine = db.engine
    results = [_database(engine)]
    if results[0][0]:
        results.append(_migrations(app, engine))
        results.append(_schema(engine))
        if results[-1][0]:
            results += _drift(app, engine)
            results.append(_outbox(engine))
    results += _ami(app, engine)
    return results
