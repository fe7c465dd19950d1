"""What every area's service does the same way: find one, keep a column unique, commit."""

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .ext import db
from .validation import Conflict, NotFound


def get_or_not_found(model, description: str, **by):
    found = db.session.scalar(sa.select(model).filter_by(**by))
    if found is None:
        raise NotFound(description)
    return found


def ensure_unique(model, field: str, value, message: str, current=None) -> None:
    """A 409 naming the field when another object already has this value."""
    other = db.session.scalar(sa.select(model).filter_by(**{field: value}))
    if other is not None and other is not current:
        raise Conflict({field: message})


def commit_or_conflict(field: str, message: str) -> None:
    """Commit, turning a unique-constraint race (two admins saving the same number at once) into a 409."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict({field: message}) from None
