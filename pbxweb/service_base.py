"""What every area's service does the same way when it writes."""

from sqlalchemy.exc import IntegrityError

from .ext import db
from .validation import Conflict


def commit_or_conflict(field: str, message: str) -> None:
    """Commit, turning a unique-constraint race (two admins saving the same number at once) into a 409."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict({field: message}) from None
