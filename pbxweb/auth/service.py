"""Users, their roles, and API tokens."""

import hashlib
import secrets

import sqlalchemy as sa

from .. import validation as v
from ..ext import db
from ..extensions.service import get_extension
from ..models import ROLES, ApiToken, User
from ..service_base import commit

MIN_USER_PASSWORD = 12


def create_user(username: str, role: str, password: str | None = None, extension_number: str | None = None):
    """Returns the user and the password (generated when not given, to be shown once)."""
    errors = v.Errors()
    errors.check("username", isinstance(username, str) and 1 <= len(username) <= 80 and username.isprintable()
                 and not any(c.isspace() for c in username), "must be 1-80 printable characters without spaces")
    v.choice(errors, "role", role, ROLES)
    if password is None:
        password = v.generate_password(20)
    else:
        errors.check("password", len(password) >= MIN_USER_PASSWORD, f"must be at least {MIN_USER_PASSWORD} characters")
    errors.raise_if_any()
    if db.session.scalar(sa.select(User).where(User.username == username)) is not None:
        raise v.Conflict({"username": f"user {username} already exists"})
    user = User(username=username, role=role)
    if extension_number is not None:
        user.extension = get_extension(extension_number)
    user.set_password(password)
    db.session.add(user)
    commit("username", f"user {username} already exists")
    return user, password


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_user(username: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise v.NotFound(f"user {username}")
    return user


def create_token(username: str) -> str:
    """A new bearer token for the user; only its hash is stored, so this is the one time it is seen."""
    user = get_user(username)
    token = "pbx_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=hash_token(token)))
    commit()
    return token


def user_for_token(token: str) -> User | None:
    api_token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if api_token is None or not api_token.user.is_active:
        return None
    return api_token.user


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None or not user.is_active or not user.check_password(password):
        return None
    return user


def has_admin() -> bool:
    return db.session.scalar(sa.select(User.id).where(User.role == "admin").limit(1)) is not None
