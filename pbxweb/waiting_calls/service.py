"""Picking up and redirecting a waiting caller. The caller's channel comes from the state the listener
stored, never from the request; what the request may choose (an extension, a destination) is validated
before it goes near AMI. The caller leaving the queue then arrives as events like any other change."""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami import actions
from ..ami.client import AmiAnswerLost, AmiError
from ..ext import db
from ..live import store
from ..service_base import upsert_insert
from ..models import Extension, ExtensionGroup, PickupClaim, RateEvent, WaitingCall, utcnow

log = logging.getLogger(__name__)
DESTINATION = re.compile(r"[0-9*#]{1,20}")
# Asterisk's answers that mean the caller is gone by the time we asked.
GONE = ("Channel does not exist", "No such channel")


def _visible_call(uniqueid: str, user) -> WaitingCall:
    call = db.session.get(WaitingCall, uniqueid)
    groups = store.visible_group_ids(db.session, user)
    if call is None or (groups is not None and call.group_id not in groups):
        raise v.NotFound(f"waiting call {uniqueid}")
    return call


@dataclass(frozen=True)
class Sent:
    """An action Asterisk took (`confirmed`, with its message), or one that went out and whose answer was lost:
    Asterisk may have done it, so the person is told to watch the live state rather than to try again."""

    confirmed: bool
    message: str


UNCONFIRMED = "Sent, but Asterisk did not confirm it: watch the dashboard before trying again."


def _send(name: str, fields: dict) -> Sent:
    try:
        response = actions.send(current_app.config, name, fields)
    except AmiAnswerLost as exc:
        log.warning("AMI %s: outcome unknown: %s", name, exc)
        return Sent(confirmed=False, message=UNCONFIRMED)
    except AmiError as exc:
        raise v.Unavailable({"_": f"Asterisk is not reachable: {exc}"}) from None
    message = response.get("Message") or ""
    if response.response != "Success":
        if message.startswith(GONE):
            raise v.Conflict({"_": "the caller is no longer waiting"})
        raise v.Unavailable({"_": f"Asterisk refused {name}: {message}"})
    return Sent(confirmed=True, message=message)


def _caller_id(call: WaitingCall) -> str:
    # The name goes inside "…": quotes and backslashes in it would break the callerid string.
    name = re.sub(r'["\\<>\r\n]', "", call.caller_name)[:40]
    return f'"{name}" <{re.sub(r"[^0-9+*#]", "", call.caller_number)}>'


def pick_up(uniqueid: str, user, extension_number: str | None) -> Sent:
    """Ring an extension; when it answers, the caller is bridged to it (the caller leaves the queue). The
    claim is released only when nothing went out; an unconfirmed Originate keeps it (a phone may be ringing)."""
    call = _visible_call(uniqueid, user)
    if user.role == "agent":
        own = user.extension.number if user.extension else None
        if own is None or extension_number not in (None, own):
            raise v.Forbidden({"extension": "an agent picks up calls on their own extension only"})
        extension_number = own
    errors = v.Errors()
    errors.check("extension", isinstance(extension_number, str) and extension_number.isdigit(), "is required")
    errors.raise_if_any()
    extension = db.session.scalar(sa.select(Extension).where(Extension.number == extension_number))
    if extension is None or not extension.is_active:
        raise v.ValidationError({"extension": f"extension {extension_number} does not exist or is inactive"})
    _claim(call.uniqueid, user)
    try:
        return _send("Originate", {
            "Channel": f"PJSIP/{extension.number}",
            "Application": "Bridge",
            "Data": call.channel,
            "CallerID": _caller_id(call),
            "Timeout": str(PICKUP_RING_SECONDS * 1000),
            "Async": "true",
        })
    except v.ServiceError:
        _release(call.uniqueid, user)
        raise


# How long the picking-up phone rings; a claim lasts that long and a little more.
PICKUP_RING_SECONDS = 20


def _claim(uniqueid: str, user) -> None:
    """Take the caller for this user, or a 409 when someone else's pick-up is ringing: exactly one Originate
    goes out however many click at once (one statement decides, on the caller's row of claims)."""
    now = utcnow()
    table = PickupClaim.__table__
    statement = upsert_insert(db.session.get_bind().dialect.name, table).values(
        uniqueid=uniqueid, user_id=user.id, expires_at=now + timedelta(seconds=PICKUP_RING_SECONDS + 5))
    statement = statement.on_conflict_do_update(
        index_elements=["uniqueid"], set_={"user_id": statement.excluded.user_id, "expires_at": statement.excluded.expires_at},
        where=table.c.expires_at < now,
    )
    taken = db.session.execute(statement).rowcount
    db.session.commit()
    if not taken:
        raise v.Conflict({"_": "this caller is already being picked up by someone else"})


def _release(uniqueid: str, user) -> None:
    db.session.rollback()
    db.session.execute(sa.delete(PickupClaim).where(PickupClaim.uniqueid == uniqueid, PickupClaim.user_id == user.id))
    db.session.commit()


def group_dial_code(group_id: int) -> str:
    """What the internal dialplan rings a group by (`*83`)."""
    return f"{current_app.config['PBX_GROUP_DIAL_PREFIX']}{group_id}"


REDIRECTS_PER_MINUTE = 6
# The dialplan context (asterisk/extensions.conf) that puts a caller into an extension's voicemail.
VOICEMAIL_DIALPLAN = "voicemail-direct"
REDIRECT_FIELDS = ("destination", "group_id", "voicemail")


def _active_group(group_id: int) -> ExtensionGroup | None:
    group = db.session.get(ExtensionGroup, group_id)
    return group if group is not None and group.is_active else None


def _active_extension(number) -> Extension | None:
    extension = db.session.scalar(sa.select(Extension).where(Extension.number == number))
    return extension if extension is not None and extension.is_active else None


def _internal_target(errors: v.Errors, given: dict) -> tuple[str, str] | None:
    """Where in the PBX a redirected caller goes, as (context, Exten) built from our own rows, never from the
    request's text: an active extension's number or an active group's dial code in the internal context, or
    an extension's voicemail. The internal context dials outside numbers too, so anything else (an outside
    number, a number that is nobody's) is refused, for every role."""
    chosen = [field for field in REDIRECT_FIELDS if given.get(field) is not None]
    if len(chosen) != 1:
        errors.check("destination" if not chosen else "_", False,
                     "is required: an extension or a group's dial code (or instead group_id or voicemail)" if not chosen
                     else f"give one of {', '.join(REDIRECT_FIELDS)}, not {' and '.join(chosen)}")
        return None
    internal = current_app.config["PBX_DEFAULT_CONTEXT"]
    if chosen == ["group_id"]:
        group_id = v.integer(errors, "group_id", given["group_id"], minimum=1, maximum=2**31 - 1)
        group = _active_group(group_id) if group_id else None
        errors.check("group_id", group is not None, "is not an active group")
        return (internal, group_dial_code(group.id)) if group else None
    field = chosen[0]
    value = given[field]
    if not errors.check(field, isinstance(value, str) and DESTINATION.fullmatch(value) is not None,
                        "must be 1-20 of 0-9, * and #"):
        return None
    if field == "voicemail":
        extension = _active_extension(value)
        has_box = extension is not None and extension.voicemail
        errors.check("voicemail", has_box, "is not an active extension with voicemail on")
        return (VOICEMAIL_DIALPLAN, extension.number) if has_box else None
    prefix = current_app.config["PBX_GROUP_DIAL_PREFIX"]
    code = value.removeprefix(prefix)
    group = _active_group(int(code)) if value.startswith(prefix) and code.isdigit() and len(code) <= 9 else None
    if group is not None:
        return internal, group_dial_code(group.id)
    extension = _active_extension(value)
    if extension is not None:
        return internal, extension.number
    errors.check("destination", False, "is not an active extension or group dial code of this PBX "
                                       "(a caller is redirected inside the PBX only)")
    return None


def redirect(uniqueid: str, user, given: dict) -> Sent:
    """Send the caller to an extension, a group or a voicemail box of this PBX (never outside it), from one
    of REDIRECT_FIELDS in `given`; rate-limited per user."""
    call = _visible_call(uniqueid, user)
    errors = v.Errors()
    target = _internal_target(errors, given)
    errors.raise_if_any()
    rate_limit(f"redirect:{user.id}", REDIRECTS_PER_MINUTE, timedelta(minutes=1), "redirects")
    context, exten = target
    return _send("Redirect", {"Channel": call.channel, "Context": context, "Exten": exten, "Priority": "1"})


def waiting_by_group() -> list[dict]:
    """Every group with how many callers wait in it and the longest wait, for an overview (admins)."""
    now = utcnow()
    waits = {}
    for call in db.session.scalars(sa.select(WaitingCall)):
        seconds = int((now - (call.joined_at if call.joined_at.tzinfo else call.joined_at.replace(tzinfo=now.tzinfo))).total_seconds())
        count, longest = waits.get(call.group_id, (0, 0))
        waits[call.group_id] = (count + 1, max(longest, seconds))
    groups = db.session.execute(sa.select(ExtensionGroup.id, ExtensionGroup.name, ExtensionGroup.is_active)
                                .order_by(ExtensionGroup.name)).all()
    return [{"id": g.id, "name": g.name, "is_active": g.is_active, "waiting": waits.get(g.id, (0, 0))[0],
             "longest_wait": waits.get(g.id, (0, 0))[1]} for g in groups]


# --- click-to-call ----------------------------------------------------------------------------------------

NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
CALLS_PER_MINUTE = 6


# The first key of pg_advisory_xact_lock(int, int) for rate limits; the second is the limit's key, hashed.
RATE_LOCK_SPACE = 0x7262  # "rb"


def rate_limit(key: str, limit: int, window: timedelta, what: str) -> None:
    """A 429 past `limit` uses of `key` in `window`; otherwise the use is counted (in the database, so every
    worker counts the same). Counting and recording are one step: a transaction-scoped advisory lock per key
    makes parallel requests of one user queue up here, so each counts the uses committed before it (under READ
    COMMITTED the count, a statement after the lock, sees them)."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                        {"space": RATE_LOCK_SPACE, "key": key})
    now = utcnow()
    session.execute(sa.delete(RateEvent).where(RateEvent.key == key, RateEvent.at < now - window))
    used = session.scalar(sa.select(sa.func.count()).where(RateEvent.key == key, RateEvent.at >= now - window))
    if used >= limit:
        session.commit()
        raise v.TooManyRequests({"_": f"at most {limit} {what} a minute from here: try again in a moment"})
    session.add(RateEvent(key=key, at=now))
    session.commit()


def click_to_call(user, number) -> Sent:
    """Ring the user's own phone; when it answers, dial `number` from the internal dialplan, as if dialled."""
    errors = v.Errors()
    errors.check("number", isinstance(number, str) and NUMBER.fullmatch(number) is not None,
                 "must be up to 32 digits, + * or #")
    errors.raise_if_any()
    if user.extension is None or not user.extension.is_active:
        raise v.ValidationError({"_": "you have no extension of your own to call from: ask an admin to link one to your user"})
    rate_limit(f"call:{user.id}", CALLS_PER_MINUTE, timedelta(minutes=1), "calls")
    own = user.extension.number
    return _send("Originate", {
        "Channel": f"PJSIP/{own}",
        "Context": current_app.config["PBX_DEFAULT_CONTEXT"],
        "Exten": number.lstrip("+") if number.startswith("+") else number,
        "Priority": "1",
        "CallerID": f'"Call to {number}" <{own}>',
        "Timeout": "30000",
        "Async": "true",
    })
