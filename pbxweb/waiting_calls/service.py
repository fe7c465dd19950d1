"""Picking up and redirecting a waiting caller. The caller's channel comes from the state the listener
stored, never from the request; what the request may choose (an extension, a destination) is validated
before it goes near AMI. The caller leaving the queue then arrives as events like any other change."""

import re

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami import actions
from ..ami.client import AmiError
from ..ext import db
from ..live import store
from ..models import Extension, WaitingCall

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
    return _send("Originate", {
        "Channel": f"PJSIP/{extension.number}",
        "Application": "Bridge",
        "Data": call.channel,
        "CallerID": _caller_id(call),
        "Timeout": "20000",
        "Async": "true",
    })


def group_dial_code(group_id: int) -> str:
    """What the internal dialplan rings a group by (`*83`)."""
    return f"{current_app.config['PBX_GROUP_DIAL_PREFIX']}{group_id}"


def redirect(uniqueid: str, user, destination) -> str:
    """Send the caller to a number of the internal dialplan (an extension, a group code, voicemail)."""
    call = _visible_call(uniqueid, user)
    errors = v.Errors()
    errors.check("destination", isinstance(destination, str) and DESTINATION.fullmatch(destination) is not None,
                 "must be 1-20 of 0-9, * and #")
    errors.raise_if_any()
    return _send("Redirect", {
        "Channel": call.channel,
        "Context": current_app.config["PBX_DEFAULT_CONTEXT"],
        "Exten": destination,
        "Priority": "1",
    })
