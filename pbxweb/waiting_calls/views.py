"""The dashboard staff keep open all day: who is free, who waits and for how long, today's figures, and
whether Asterisk is reachable — kept current by the live socket (pbxweb/live/socket.py). Pick up and
redirect go through the same service as the API."""

from flask import Blueprint, g, render_template, request

from .. import validation as v
from ..ext import db
from ..models import ExtensionGroup
from . import panels, service

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    group_filter = None
    if request.args.get("group"):
        errors = v.Errors()
        group_filter = v.integer(errors, "group", request.args["group"], minimum=1, maximum=2**31 - 1)
        errors.raise_if_any()
    return render_template("dashboard/index.html", **panels.context(g.user, group_filter))


def _answer(message: str, status: int = 200):
    return render_template("dashboard/_notice.html", message=message), status


@bp.post("/waiting/<uniqueid>/pickup")
def pick_up(uniqueid):
    if g.user.extension is None:
        return _answer("You have no extension of your own to take the call on: ask an admin to link one to your user.", 400)
    service.pick_up(uniqueid, g.user, None if g.user.role == "agent" else g.user.extension.number)
    return _answer(f"Your phone ({g.user.extension.number}) is ringing: answer it to take the caller.")


@bp.post("/waiting/<uniqueid>/redirect")
def redirect(uniqueid):
    target = request.form.get("target", "").strip()
    if target.startswith("group:"):
        group = db.session.get(ExtensionGroup, int(target[6:])) if target[6:].isdigit() else None
        if group is None:
            raise v.ValidationError({"target": "is not a group"})
        destination, shown = service.group_dial_code(group.id), f"group {group.name}"
    else:
        destination, shown = target, target
    service.redirect(uniqueid, g.user, destination)
    return _answer(f"The caller is on the way to {shown}.")
