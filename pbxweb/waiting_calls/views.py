"""The dashboard staff keep open all day: who is free, who waits and for how long, today's figures, and
whether Asterisk is reachable — kept current by the live socket (pbxweb/live/socket.py). Pick up and
redirect go through the same service as the API."""

from functools import wraps

from flask import Blueprint, g, render_template, request

from .. import validation as v
from ..ext import db
from ..pages import is_fragment, page_or_fragment
from ..models import ExtensionGroup
from . import panels, service

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    view = panels.presence_view(request.args)
    # An htmx request is a search, a group or a page of the presence grid: that panel alone.
    context = panels.presence_context if is_fragment() else panels.context
    return page_or_fragment("dashboard/index.html", "dashboard/_presence_view.html", **context(g.user, view))


def _answer(message: str, status: int = 200):
    return render_template("dashboard/_notice.html", message=message, failed=status >= 400), status


def acting(view):
    """A dashboard action answers in the notice line, success or refusal alike (never a whole error page)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except v.ServiceError as error:
            db.session.rollback()
            return _answer(" ".join(error.errors.values()), error.status)

    return wrapped


@bp.post("/waiting/<uniqueid>/pickup")
@acting
def pick_up(uniqueid):
    if g.user.extension is None:
        return _answer("You have no extension of your own to take the call on: ask an admin to link one to your user.", 400)
    service.pick_up(uniqueid, g.user, None if g.user.role == "agent" else g.user.extension.number)
    return _answer(f"Your phone ({g.user.extension.number}) is ringing: answer it to take the caller.")


@bp.post("/waiting/<uniqueid>/redirect")
@acting
def redirect(uniqueid):
    target = request.form.get("target", "").strip() or request.form.get("number", "").strip()
    if target.startswith("group:"):
        service.redirect(uniqueid, g.user, group_id=target[6:])
        group = db.session.get(ExtensionGroup, int(target[6:]))
        return _answer(f"The caller is on the way to group {group.name}.")
    service.redirect(uniqueid, g.user, target)
    return _answer(f"The caller is on the way to {target}.")


@bp.post("/call")
@acting
def call():
    number = request.form.get("number", "")
    service.click_to_call(g.user, number)
    return _answer(f"Your phone ({g.user.extension.number}) is ringing: answer it and {number} is dialled.")
