"""Browser sessions, held on the server. The signed cookie carries only a random key; the session lives as
long as its row in pbx_sessions does. Logging out deletes the row, so the cookie replayed afterwards opens
nothing; a password reset or a deactivation deletes every row of the user; a session that made no request
for PBX_SESSION_IDLE_HOURS is deleted when it next shows up (or when anyone signs in).

A request does not write: the last-seen time moves at most once a minute.
"""

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from ..ext import db
from ..models import BrowserSession, User, as_utc, utcnow

SEEN_EVERY = timedelta(minutes=1)


def _row_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _idle_limit() -> timedelta:
    return timedelta(hours=current_app.config["PBX_SESSION_IDLE_HOURS"])


def start(user: User) -> str:
    """A new session for the user; returns the key for its cookie."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    # Browsers that never came back leave rows behind: sign-ins sweep them.
    db.session.execute(sa.delete(BrowserSession).where(BrowserSession.last_seen_at < now - _idle_limit()))
    db.session.add(BrowserSession(id=_row_id(key), user_id=user.id, created_at=now, last_seen_at=now))
    db.session.commit()
    return key


def user_of(key: str) -> User | None:
    """The active user whose live session this key opens; None once it has ended or idled out."""
    row_id = _row_id(key)
    # The user and its extension with the session, in one statement: every request reads them.
    row = db.session.get(BrowserSession, row_id, options=[joinedload(BrowserSession.user).joinedload(User.extension)])
    if row is None:
        return None
    now = utcnow()
    idle = now - as_utc(row.last_seen_at)
    if idle > _idle_limit():
        end(key)
        return None
    user = row.user
    if idle >= SEEN_EVERY:
        # A statement, not the row: a logout in another tab may have deleted it meanwhile.
        db.session.execute(sa.update(BrowserSession).where(BrowserSession.id == row_id).values(last_seen_at=now))
        db.session.commit()
    return user if user.is_active else None


def end(key: str) -> None:
    db.session.execute(sa.delete(BrowserSession).where(BrowserSession.id == _row_id(key)))
    db.session.commit()


def end_all_of(user: User) -> None:
    """Every session of the user ends, in the caller's transaction (a reset or a deactivation commits it)."""
    db.session.execute(sa.delete(BrowserSession).where(BrowserSession.user_id == user.id))
