"""Picking up and redirecting a waiting caller. The caller's channel comes from the state the listener
stored, never from the request; what the request may choose (an extension, a destination) is validated
before it goes near AMI. The caller leaving the queue then arrives as events like any other change."""

import re
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami import actions
from ..ami.client import AmiError
from ..ext import db
from ..live import store
from ..service_base import upsert_insert
from ..models import Extension, ExtensionGroup, PickupClaim, RateEvent, WaitingCall, utcnow

DESTINATION = re.compile(r"[0-9*#]{1,20}")
# Asterisk's answers that mean the caller is gone by the time we asked.
GONE = ("Channel does not exist", "No such channel")


def _visible_call(uniqueid: str, user) -> WaitingCall:
    call = db.session.get(WaitingCall, uniqueid)
    groups = store.visible_group_ids(db.session, user)
    if call is None or (groups is not None and call.group_id not in groups):
        raise v.NotFound(f"waiting call {uniqueid}")
    return call


def _send(name: str, fields: dict) -> str:
    try:
        response = actions.send(current_app.config, name, fields)
    except AmiError as exc:
        raise v.Unavailable({"_": f"Asterisk is not reachable: {exc}"}) from None
    message = response.get("Message") or ""
    if response.response != "Success":
        if message.startswith(GONE):
            raise v.Conflict({"_": "the caller is no longer waiting"})
        raise v.Unavailable({"_": f"Asterisk refused {name}: {message}"})
    return message


def _caller_id(call: WaitingCall) -> str:
    # The name goes inside "…": quotes and backslashes in it would break the callerid string.
    name = re.sub(r'["\\<>\r\n]', "", call.caller_name)[:40]
    return f'"{name}" <{re.sub(r"[^0-9+*#]", "", call.caller_number)}>'


def pick_up(uniqueid: str, user, extension_number: str | None) -> str:
    """Ring an extension; when it answers, the caller is bridged to it (the caller leaves the queue)."""
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


def redirect(uniqueid: str, user, destination=None, group_id=None) -> str:
    """Send the caller to a number of the internal dialplan (an extension, voicemail) or to an active group."""
    call = _visible_call(uniqueid, user)
    errors = v.Errors()
    errors.check("destination" if destination is None else "_", (destination is None) != (group_id is None),
                 "is required: a number, or instead a group_id" if destination is None else "give destination or group_id, not both")
    if group_id is not None:
        group_id = v.integer(errors, "group_id", group_id, minimum=1, maximum=2**31 - 1)
        group = db.session.get(ExtensionGroup, group_id) if group_id else None
        if errors.check("group_id", group is not None and group.is_active, "is not an active group"):
            destination = group_dial_code(group.id)
    elif destination is not None:
        errors.check("destination", isinstance(destination, str) and DESTINATION.fullmatch(destination) is not None,
                     "must be 1-20 of 0-9, * and #")
    errors.raise_if_any()
    return _send("Redirect", {
        "Channel": call.channel,
        "Context": current_app.config["PBX_DEFAULT_CONTEXT"],
        "Exten": destination,
        "Priority": "1",
    })


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


def rate_limit(key: str, limit: int, window: timedelta) -> None:
    """A 429 past `limit` uses of `key` in `window`; otherwise the use is counted (in the database, so every
    worker counts the same)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Uses of one key count one at a time: two at once, each on its own worker, would both see room for one.
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"rate:{key}"})
    now = utcnow()
    db.session.execute(sa.delete(RateEvent).where(RateEvent.at < now - window))
    used = db.session.scalar(sa.select(sa.func.count()).where(RateEvent.key == key, RateEvent.at >= now - window))
    if used >= limit:
        db.session.commit()
        raise v.TooManyRequests({"_": f"at most {limit} calls a minute from here: try again in a moment"})
    db.session.add(RateEvent(key=key, at=now))
    db.session.commit()


def click_to_call(user, number) -> str:
    """Ring the user's own phone; when it answers, dial `number` from the internal dialplan, as if dialled."""
    errors = v.Errors()
    errors.check("number", isinstance(number, str) and NUMBER.fullmatch(number) is not None,
                 "must be up to 32 digits, + * or #")
    errors.raise_if_any()
    if user.extension is None or not user.extension.is_active:
        raise v.ValidationError({"_": "you have no extension of your own to call from: ask an admin to link one to your user"})
    rate_limit(f"call:{user.id}", CALLS_PER_MINUTE, timedelta(minutes=1))
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
