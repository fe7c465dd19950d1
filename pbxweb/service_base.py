"""What every area's service does the same way: find and lock what it changes, keep a column unique, keep
values within their columns, commit.

Locking: every write locks the rows it changes (`SELECT … FOR UPDATE`) before reading anything it decides
on, so two admins saving at once are serialised instead of interleaved. The order is always the same —
extensions (by id) before groups (by id) — so two writers can never wait on each other in a circle. A
writer that loses finds its object gone (404) or changed under a unique rule (409), never a 500 and never
an Asterisk row left without its owner. SQLite has no row locks and needs none: it has one writer at a time.
"""

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .ext import db
from .validation import Conflict, NotFound, ValidationError


def get_or_not_found(model, description: str, *, lock: bool = False, **by):
    """One object, or a 404. `lock`: hold it FOR UPDATE until the transaction ends, re-read as committed
    (a concurrent change that moved it away, a rename or a delete, makes it not found)."""
    query = sa.select(model).filter_by(**by)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = db.session.scalar(query)
    if found is None:
        raise NotFound(description)
    return found


def lock_rows(model, ids, *, shared: bool = False) -> list:
    """Lock these rows in id order (FOR SHARE when `shared`: they must not change or go, but others may read
    and share-lock them too); returns the objects that still exist."""
    ids = sorted(set(ids))
    if not ids:
        return []
    query = (
        sa.select(model).where(model.id.in_(ids)).order_by(model.id)
        .with_for_update(read=shared).execution_options(populate_existing=True)
    )
    return list(db.session.scalars(query))


def ensure_unique(model, field: str, value, message: str, current=None) -> None:
    """A 409 naming the field when another object already has this value."""
    other = db.session.scalar(sa.select(model).filter_by(**{field: value}))
    if other is not None and other is not current:
        raise Conflict({field: message})


RACE = "conflicts with a change saved at the same moment; reload and try again"


def upsert_insert(dialect_name: str, table):
    """An INSERT that can take `.on_conflict_do_update(…)`: PostgreSQL's, or SQLite's for a first run."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def commit(field: str = "_", message: str = RACE, *, answer=None):
    """Commit; a unique-key race (two admins saving the same number at once) or a row deleted under us
    becomes a 409 naming the field, with nothing written.

    `answer`, a function, builds the response after the flush and before the commit, and its result is
    returned: nothing that can fail (a lazy load, a query) runs between a commit and its response, so a
    database that drops right after a commit cannot hide a change that was made (a SIP password shown once)."""
    try:
        db.session.flush()
        result = answer() if answer is not None else None
        db.session.commit()
    except (IntegrityError, StaleDataError):
        db.session.rollback()
        raise Conflict({field: message}) from None
    return result


def _values_fit_columns(session: Session, flush_context, instances) -> None:
    """A value longer than its column is a 400 naming the field, decided before the database sees it; the
    widths come from the models' own column types."""
    for obj in (*session.new, *session.dirty):
        mapper = sa.inspect(obj).mapper
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            length = getattr(column.type, "length", None)
            value = getattr(obj, attr.key, None)
            if length and isinstance(value, str) and len(value) > length:
                raise ValidationError({attr.key: f"must be at most {length} characters"})


def init_app(app) -> None:
    if not event.contains(db.session, "before_flush", _values_fit_columns):
        event.listen(db.session, "before_flush", _values_fit_columns)
