"""Users, their roles, and API tokens."""

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import orm
from werkzeug.security import check_password_hash, generate_password_hash

from .. import validation as v
from ..ext import db
from ..extensions.service import get_extension
from ..models import ROLES, ApiToken, LoginFailures, User, as_utc, utcnow
from ..service_base import commit, get_or_not_found, upsert_insert
from . import sessions

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
    extension = None
    if extension_number is not None:
        try:
            extension = get_extension(extension_number)
        except v.NotFound:
            errors.check("extension", False, f"{extension_number} is not an extension")
    errors.raise_if_any()
    if db.session.scalar(sa.select(User).where(User.username == username)) is not None:
        raise v.Conflict({"username": f"user {username} already exists"})
    user = User(username=username, role=role, extension=extension)
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


def create_token(username: str, name: str = "API token") -> str:
    """A new bearer token for the user; only its hash is stored, so this is the one time it is seen."""
    user = get_user(username)
    errors = v.Errors()
    errors.check("name", isinstance(name, str) and 1 <= len(name.strip()) <= 80 and name.isprintable(),
                 "must be 1-80 printable characters")
    errors.raise_if_any()
    token = "pbx_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=hash_token(token), name=name.strip()))
    commit()
    return token


def list_tokens(username: str | None = None) -> list[ApiToken]:
    """Live tokens (a revoked one is gone), of one user or of everyone, newest first."""
    query = sa.select(ApiToken).join(ApiToken.user).options(orm.contains_eager(ApiToken.user))
    if username is not None:
        query = query.where(User.id == get_user(username).id)
    return list(db.session.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token(token_id: int) -> str:
    """The token stops working at once, for good (its row is deleted; the audit log keeps the deletion).
    Returns what it was: "nightly export (#3) of alice"."""
    token = get_or_not_found(ApiToken, f"token {token_id}", id=token_id, lock=True)
    described = f"{token.label} of {token.user.username}"
    db.session.delete(token)
    commit()
    return described


def _revoke_everything_of(user: User) -> None:
    """Every session and every token of the user end, in the caller's transaction: what a password reset and
    a deactivation do. Reactivating the user later brings none of them back."""
    sessions.end_all_of(user)
    for token in db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)):
        db.session.delete(token)


# A token's last use is written at most this often: a script's every request is no write.
TOKEN_SEEN_EVERY = timedelta(minutes=1)


def user_for_token(token: str) -> User | None:
    api_token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token))
                                  .options(orm.joinedload(ApiToken.user).joinedload(User.extension)))
    if api_token is None or not api_token.user.is_active:
        return None
    now = utcnow()
    if api_token.last_used_at is None or now - as_utc(api_token.last_used_at) >= TOKEN_SEEN_EVERY:
        # A statement, not the object: a revocation at the same moment must not turn into a 500.
        db.session.execute(sa.update(ApiToken).where(ApiToken.id == api_token.id).values(last_used_at=now))
        db.session.commit()
    return api_token.user


# Checked against when the user does not exist, so that an unknown name costs the same hash as a wrong
# password: the answer's timing does not tell which user names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


def authenticate(username: str, password: str) -> User | None:
    """The user these credentials sign in, or None. Unknown, deactivated and wrong-password all do the
    same work."""
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


# Failed sign-ins allowed in a window, per user name and per address, before sign-in is refused for a while.
LOGIN_LIMITS = {"user": 5, "addr": 20}
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_LOCK = timedelta(minutes=15)


def _failure_keys(username: str, address: str | None) -> list[str]:
    keys = [f"user:{username.lower()[:190]}"]
    if address:
        keys.append(f"addr:{address[:190]}")
    return keys


def _locked_for(keys: list[str]) -> timedelta | None:
    now = utcnow()
    until = db.session.scalars(
        sa.select(LoginFailures.locked_until).where(LoginFailures.key.in_(keys), LoginFailures.locked_until > now)
    ).all()
    return max(as_utc(u) for u in until) - now if until else None


def _record_failure(keys: list[str]) -> None:
    """Count a failure under each key in one statement per key (an upsert: two workers count both)."""
    now = utcnow()
    table = LoginFailures.__table__
    dialect_name = db.session.get_bind().dialect.name
    for key in keys:
        limit = LOGIN_LIMITS[key.split(":", 1)[0]]
        statement = upsert_insert(dialect_name, table).values(key=key, failures=1, first_at=now, locked_until=None)
        expired = table.c.first_at < now - LOGIN_WINDOW
        failures = sa.case((expired, 1), else_=table.c.failures + 1)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": failures,
                "first_at": sa.case((expired, statement.excluded.first_at), else_=table.c.first_at),
                "locked_until": sa.case((failures >= limit, now + LOGIN_LOCK), else_=None),
            },
        )
        db.session.execute(statement)
    db.session.commit()


def sign_in(username: str, password: str, address: str | None) -> User | None:
    """authenticate(), throttled: after too many failures for this user name or from this address, every
    attempt is refused (429) until the lock expires, right password or not."""
    keys = _failure_keys(username, address)
    locked = _locked_for(keys)
    if locked is not None:
        minutes = max(1, round(locked.total_seconds() / 60))
        raise v.TooManyRequests({"_": f"Too many failed sign-ins for this user or from this address. Try again in {minutes} minute{'s' if minutes > 1 else ''}."})
    user = authenticate(username, password)
    if user is None:
        _record_failure(keys)
        return None
    db.session.execute(sa.delete(LoginFailures).where(LoginFailures.key == keys[0]))
    db.session.commit()
    return user


def has_admin() -> bool:
    return db.session.scalar(sa.select(User.id).where(User.role == "admin").limit(1)) is not None


# --- the users page --------------------------------------------------------------------------------------


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.username)))


def update_user(user_id: int, data: dict, acting: User) -> User:
    """Role, own extension, active. Deactivating ends every session and every API token of the user at once."""
    errors = v.Errors()
    for field in sorted(set(data) - {"role", "extension", "is_active"}):
        errors.check(field, False, "is not a field of a user")
    user = get_or_not_found(User, f"user {user_id}", id=user_id, lock=True)
    role = v.choice(errors, "role", data.get("role", user.role), ROLES)
    is_active = v.boolean(errors, "is_active", data.get("is_active", user.is_active))
    extension = user.extension
    if "extension" in data:
        number = (data["extension"] or "").strip()
        extension = None
        if number:
            try:
                extension = get_extension(number)
            except v.NotFound:
                errors.check("extension", False, f"{number} is not an extension")
    if user.id == acting.id:
        # The last way back in must not be closed by mistake.
        errors.check("role", role == "admin", "of your own account cannot be lowered: ask another admin")
        errors.check("is_active", bool(is_active), "of your own account cannot be switched off")
    errors.raise_if_any()
    if not is_active and user.is_active:
        _revoke_everything_of(user)
    user.role, user.is_active, user.extension = role, is_active, extension
    commit()
    return user


def reset_password(user_id: int) -> tuple[User, str]:
    """A new generated password, shown once; every session and every API token of the user ends."""
    user = get_or_not_found(User, f"user {user_id}", id=user_id, lock=True)
    password = v.generate_password(20)
    user.set_password(password)
    _revoke_everything_of(user)
    commit()
    return user, password
