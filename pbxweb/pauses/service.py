"""Pausing with a reason: the short list of reasons admins keep, and pausing or resuming an agent in Asterisk
(AMI QueuePause) in one group or in all of theirs. Asterisk then writes `paused` into the member rows, sends
QueueMemberPause (the dashboard follows it) and logs PAUSE/UNPAUSE with the reason in the queue log, which
the per-agent report reads. Only a name from the list ever reaches AMI: never text from the request."""

import re

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami import actions
from ..ami.client import AmiAnswerLost, AmiError
from ..ext import db
from ..models import Extension, ExtensionGroup, GroupMember, PauseReason
from ..service_base import commit, ensure_unique

# Who may pause someone other than themselves.
PAUSES_OTHERS = ("admin", "manager")
# `|` separates the queue log's data fields (Asterisk would split the reason across them); `,` separates
# dialplan application arguments.
REASON_FORBIDDEN = re.compile(r"[|,]")
REASON_WIDTH = 40


# --- the list admins keep -------------------------------------------------------------------------------


def reasons() -> list[PauseReason]:
    return list(db.session.scalars(sa.select(PauseReason).order_by(PauseReason.name)))


def create_reason(data: dict) -> PauseReason:
    errors = v.Errors()
    for field in sorted(set(data) - {"name"}):
        errors.check(field, False, "is not a field of a pause reason")
    name = v.text(errors, "name", data.get("name"), max_length=REASON_WIDTH)
    if name is not None:
        errors.check("name", REASON_FORBIDDEN.search(name) is None, "must not contain | or ,")
    errors.raise_if_any()
    ensure_unique(PauseReason, "name", name, f"“{name}” is already a reason")
    reason = PauseReason(name=name)
    db.session.add(reason)
    commit("name", f"“{name}” is already a reason")
    return reason


def delete_reason(reason_id: int) -> None:
    reason = db.session.get(PauseReason, reason_id)
    if reason is None:
        raise v.NotFound(f"pause reason {reason_id}")
    db.session.delete(reason)
    commit()


def to_dict(reason: PauseReason) -> dict:
    return {"id": reason.id, "name": reason.name}


# --- pausing ----------------------------------------------------------------------------------------------


def _extension(user, number) -> Extension:
    own = user.extension.number if user.extension is not None else None
    if number is None:
        number = own
    if number is None:
        raise v.ValidationError({"extension": "is required: you have no extension of your own to pause"})
    if not (isinstance(number, str) and number.isdigit() and len(number) <= 6):
        raise v.ValidationError({"extension": "must be an extension's number"})
    if number != own and user.role not in PAUSES_OTHERS:
        raise v.Forbidden({"extension": "you may pause only yourself"})
    extension = db.session.scalar(sa.select(Extension).where(Extension.number == number))
    if extension is None or not extension.is_active:
        raise v.ValidationError({"extension": f"extension {number} does not exist or is inactive"})
    return extension


def pause(user, *, extension=None, paused=True, reason=None, group_id=None) -> str:
    """Pause (or resume) an extension in one of its groups, or in all of them; returns what was done, in words."""
    errors = v.Errors()
    paused = v.boolean(errors, "paused", paused)
    errors.raise_if_any()
    target = _extension(user, extension)
    groups = dict(db.session.execute(
        sa.select(ExtensionGroup.id, ExtensionGroup.name)
        .join(GroupMember, GroupMember.group_id == ExtensionGroup.id)
        .where(GroupMember.extension_id == target.id, ExtensionGroup.is_active)
    ).all())
    chosen = None
    if group_id not in (None, ""):
        chosen = v.integer(errors, "group_id", group_id, minimum=1, maximum=2**31 - 1)
        if chosen is not None:
            errors.check("group_id", chosen in groups, f"is not one of {target.number}'s groups")
    if paused:
        names = {r.name for r in reasons()}
        errors.check("reason", isinstance(reason, str) and reason in names,
                     "must be one of the pause reasons: " + (", ".join(sorted(names)) or "ask an admin to add some"))
    elif reason not in (None, ""):
        errors.check("reason", False, "is only given with a pause")
    errors.raise_if_any()
    if not groups:
        raise v.Conflict({"extension": f"{target.number} is in no active group: there is nothing to pause"})
    fields = {"Interface": f"PJSIP/{target.number}", "Paused": "true" if paused else "false"}
    if chosen is not None:
        fields["Queue"] = f"extgroup_{chosen}"
    if paused:
        fields["Reason"] = reason  # a name from the list, checked above: never the request's own text
    if not _send(fields):
        return UNCONFIRMED
    where = f"in {groups[chosen]}" if chosen is not None else "in every group"
    who = "You are" if user.extension is not None and user.extension.id == target.id else f"{target.number} is"
    return f"{who} paused {where} ({reason})." if paused else f"{who} back {where}."


UNCONFIRMED = "Sent, but Asterisk did not confirm it: the dashboard shows whether the pause took."


def _send(fields: dict) -> bool:
    """Whether Asterisk confirmed the pause; an answer lost after the action went out is no failure to send."""
    try:
        response = actions.send(current_app.config, "QueuePause", fields)
    except AmiAnswerLost:
        return False
    except AmiError as exc:
        raise v.Unavailable({"_": f"Asterisk is not reachable: {exc}"}) from None
    if response.response != "Success":
        message = response.get("Message") or "no reason given"
        if message.startswith("Interface not found"):
            raise v.Conflict({"extension": "Asterisk has it in no queue yet: try again in a moment"})
        raise v.Unavailable({"_": f"Asterisk refused the pause: {message}"})
    return True
