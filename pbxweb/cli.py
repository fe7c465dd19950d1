"""`flask --app wsgi pbx …`: sync, verify and account commands for the people who run Mini-PBX."""

import sys
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import AppGroup

from .ext import db
from .realtime import sync
from .realtime.mapping import RealtimeSettings
from .realtime.schema import SYNCED_TABLES
from .validation import ServiceError

pbx = AppGroup("pbx", help="Mini-PBX administration.")

QUEUE_TABLES = ("asterisk_queues", "asterisk_queue_members")


def _fail(error: ServiceError) -> None:
    for field, message in error.errors.items():
        click.echo(f"error: {field}: {message}" if field != "_" else f"error: {message}", err=True)
    sys.exit(1)


def run_sync(tables, dry_run: bool, prune: bool) -> list:
    """Reconcile Asterisk's tables with the models in one transaction; returns each table's changes."""
    settings = RealtimeSettings.from_config(current_app.config)
    with db.engine.connect() as conn:
        with conn.begin() as transaction:
            with click.progressbar(tables, label="Syncing", item_show_func=lambda t: t, file=sys.stderr) as bar:
                plan = sync.run(conn, settings, tables, dry_run=dry_run, prune=prune, progress=lambda _: bar)
            if dry_run:
                transaction.rollback()
    return plan


def _print_summary(plan, dry_run: bool, prune: bool) -> None:
    verb = "would be " if dry_run else ""
    click.echo(f"{'table':<24} {'inserted':>9} {'updated':>9} {'deleted':>9} {'unchanged':>10}")
    for changes in plan:
        deleted = len(changes.extras) if prune else 0
        click.echo(
            f"{changes.table:<24} {len(changes.inserts):>9} {len(changes.updates):>9} {deleted:>9} {changes.unchanged:>10}"
        )
    unowned = [(c.table, key) for c in plan for key in c.extras]
    if unowned and not prune:
        click.echo(f"\n{len(unowned)} row(s) that no Mini-PBX object owns were kept (run with --prune to delete):")
        for table, key in unowned[:50]:
            click.echo(f"  {table}: {', '.join(map(str, key))}")
        if len(unowned) > 50:
            click.echo(f"  … and {len(unowned) - 50} more")
    if dry_run:
        click.echo(f"\nDry run: nothing {verb}written.")


@pbx.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--prune", is_flag=True, help="Delete realtime rows that no Mini-PBX object owns.")
def sync_command(dry_run, prune):
    """Recompute every realtime row from the models: insert missing rows, repair drifted ones."""
    try:
        _print_summary(run_sync(SYNCED_TABLES, dry_run, prune), dry_run, prune)
    except ServiceError as error:
        _fail(error)


@pbx.command("sync-groups")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--prune", is_flag=True, help="Delete queue rows that no group owns.")
def sync_groups_command(dry_run, prune):
    """Like sync, for the queue tables alone."""
    try:
        _print_summary(run_sync(QUEUE_TABLES, dry_run, prune), dry_run, prune)
    except ServiceError as error:
        _fail(error)


@pbx.command("verify")
def verify_command():
    """Check the database, the schema, drift, and Asterisk's view over AMI. Exit 0 only when all pass."""
    from .verify import run_checks

    results = run_checks(current_app)
    for ok, label, hint in results:
        mark = "✔" if ok else "✘"
        click.echo(f"{mark} {label}" + (f" — {hint}" if hint else ""))
    sys.exit(0 if all(ok for ok, _, _ in results) else 1)


@pbx.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "manager", "qa", "agent"]))
@click.option("--extension", "extension_number", help="The user's own extension number.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(username, role, extension_number, password_stdin):
    """Create a login; the password is generated and printed once unless given on stdin."""
    from .auth.service import create_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        user, password = create_user(username, role, password, extension_number)
    except ServiceError as error:
        _fail(error)
    click.echo(f"Created {user.role} {user.username}.")
    if not password_stdin:
        click.echo(f"Password (shown once): {password}")


@pbx.command("create-token")
@click.argument("username")
@click.option("--name", default="API token", show_default=True, help="What it is for, as `tokens` lists it.")
def create_token_command(username, name):
    """Print a new API bearer token for USERNAME (shown once)."""
    from .auth.service import create_token

    try:
        click.echo(create_token(username, name))
    except ServiceError as error:
        _fail(error)


def _when(value) -> str:
    from .models import as_utc

    return f"{as_utc(value).astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if value is not None else "never"


@pbx.command("tokens")
@click.argument("username")
def tokens_command(username):
    """List USERNAME's API tokens: id, name, created, last used (the tokens themselves are not stored)."""
    from .auth.service import list_tokens

    try:
        tokens = list_tokens(username)
    except ServiceError as error:
        _fail(error)
    if not tokens:
        click.echo(f"{username} has no API tokens.")
        return
    click.echo(f"{'id':>6}  {'name':<30} {'created':<20} last used")
    for token in tokens:
        click.echo(f"{token.id:>6}  {token.name:<30} {_when(token.created_at):<20} {_when(token.last_used_at)}")


@pbx.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token_command(token_id):
    """Revoke the API token with this id (see `tokens`): it stops working at once, for good."""
    from .auth.service import revoke_token

    try:
        click.echo(f"Revoked {revoke_token(token_id)}.")
    except ServiceError as error:
        _fail(error)


@pbx.command("import-extensions")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
def import_extensions_command(file, dry_run):
    """Create extensions from a CSV file: every row is checked first, then all are created or none."""
    from .extensions import csv_io

    raw = file.read()
    try:
        with click.progressbar(length=max(1, raw.count(b"\n")), label="Checking", file=sys.stderr) as bar:
            def progress(rows):
                for row in rows:
                    bar.update(1)
                    yield row

            result = csv_io.import_extensions(raw, dry_run=dry_run, progress=progress)
    except ServiceError as error:
        _fail(error)
    for line, field, message in result.errors:
        click.echo(f"line {line}: {field if field != '_' else 'row'}: {message}", err=True)
    if result.errors:
        click.echo(f"{len(result.errors)} problem(s) in {result.rows} row(s): nothing was imported.", err=True)
        sys.exit(1)
    if dry_run:
        click.echo(f"All {result.rows} row(s) are valid. Dry run: nothing was written.")
    else:
        click.echo(f"Imported {result.created} extension(s).")


@pbx.command("export-extensions")
@click.argument("file", type=click.File("w"), default="-")
@click.option("--passwords", is_flag=True, help="Include the SIP passwords (keep the file safe).")
def export_extensions_command(file, passwords):
    """Write every extension as CSV to FILE (standard output by default)."""
    from .extensions import csv_io

    if passwords:
        csv_io.record_password_export()
    for line in csv_io.export_rows(with_passwords=passwords):
        file.write(line)


@pbx.command("cdr-test")
@click.option("--create", is_flag=True, help="Insert one call record marked as a test.")
@click.option("--delete-test", is_flag=True, help="Delete the records --create inserted.")
def cdr_test_command(create, delete_test):
    """Is the call log fed? The cdr table, its rows, the newest record, Asterisk's writes in the last day, the
    listener's Cdr events. Exits 1 when Asterisk has written nothing for a day."""
    from .cdr import service as cdr

    if create:
        click.echo(f"Inserted a test record (uniqueid {cdr.insert_test_record(db.session)}); remove it with --delete-test.")
    if delete_test:
        click.echo(f"Deleted {cdr.delete_test_records(db.session)} test record(s).")
    report = cdr.health(db.session)
    if not report["table"]:
        click.echo("✘ cdr table — missing: run `flask --app wsgi db upgrade`", err=True)
        sys.exit(1)
    click.echo(f"✔ cdr table — {report['rows']} record(s)")
    if report["newest"] is not None:
        age = datetime.now(timezone.utc).replace(tzinfo=None) - report["newest"]
        click.echo(f"  newest record: {report['newest']:%Y-%m-%d %H:%M:%S} UTC, {_age(age)} ago")
    else:
        click.echo("  no record yet")
    fed = report["written_last_day"] > 0
    click.echo(("✔" if fed else "✘") + f" Asterisk wrote {report['written_last_day']} record(s) in the last day"
               + ("" if fed else ": check cdr_adaptive_odbc.conf (quoted_identifiers) and `cdr show status`"))
    seen = report["last_cdr_event"]
    click.echo(f"  the listener last saw a Cdr event: {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else
               "  the listener has not seen a Cdr event (AMI not connected, or no call since it started)")
    sys.exit(0 if fed else 1)


def _age(delta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}{'s' if seconds >= 2 * size else ''}"
    return f"{seconds} s"


@pbx.command("first-run")
def first_run_command():
    """Create the first admin account when there is none, and print its password once."""
    from .auth.service import create_user, has_admin

    if has_admin():
        click.echo("An admin account exists already.")
        return
    user, password = create_user("admin", "admin")
    click.echo("=" * 60)
    click.echo(f"Admin account created: {user.username}")
    click.echo(f"Password (shown only now): {password}")
    click.echo("=" * 60)


@pbx.command("asterisk-config")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def asterisk_config_command(out_dir, force):
    """Render Asterisk's configuration (ODBC, realtime, PJSIP, dialplan, AMI, CDR) from the settings."""
    from pathlib import Path

    from .asterisk_config import ConfigError, render, write

    try:
        written = write(render(current_app.config), Path(out_dir), force)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    for path, mode in written:
        click.echo(f"wrote {path} ({mode:o})")


@pbx.command("ami-listen")
@click.option("--debug", is_flag=True, help="Print every event and action, one per line (secrets masked).")
def ami_listen_command(debug):
    """Run the AMI listener in this process (for sites that run it apart from the web app)."""
    from psycogreen.gevent import patch_psycopg

    from .ami.actions import configured
    from .ami.listener import Listener

    config = current_app.config
    if not configured(config):
        click.echo("error: AMI_USERNAME and AMI_SECRET must be set", err=True)
        sys.exit(1)
    # Database calls then wait cooperatively, so the AMI socket is read while a batch is written.
    patch_psycopg()

    def trace(direction: str, message) -> None:
        click.echo(f"{direction} " + " | ".join(f"{k}: {v}" for k, v in message.headers))

    listener = Listener(current_app._get_current_object(), trace=trace if debug else None)
    click.echo(f"Listening to AMI at {config['AMI_HOST']}:{config['AMI_PORT']} (Ctrl-C stops)")
    try:
        listener.run()
    except KeyboardInterrupt:
        listener.stop()


def init_app(app) -> None:
    app.cli.add_command(pbx)
