"""The dashboard staff keep open all day: who is free, who waits and for how long, today's figures, and
whether Asterisk is reachable — kept current by the live socket (pbxweb/live/socket.py). Pick up and
redirect go through the same service as the API."""

from functools import wraps

from flask import Blueprint, g, render_template, request

from .. import validation as v
from ..ext import db
from ..pages import is_fragment, page_or_fragment
from ..models import ExtensionGroup
from ..pauses import service as pauses
from . import panels, service

bp = Blueprint("dashboard", __name__)
bp.add_app_template_global(panels.card, "presence_card")


@bp.get("/")
def index():
    view = panels.presence_view(request.args)
    if is_fragment():  # a search, a group or a page of the presence grid: that panel alone
        return page_or_fragment("dashboard/index.html", "dashboard/_presence_view.html",
                                **panels.presence_context(g.user, view))
    others = g.user.role in pauses.PAUSES_OTHERS
    pause = {"shown": others or g.user.extension is not None, "reasons": pauses.reasons(), "others": others}
    return page_or_fragment("dashboard/index.html", "dashboard/_presence_view.html", pause=pause,
                            **panels.context(g.user, view))


def _answer(message: str, status: int = 200):
    return render_template("dashboard/_notice.html", message=message, failed=status >= 400), status


def _sent(sent: service.Sent, confirmed: str):
    """What happens next, or — when the action went out unanswered — not to click again yet."""
    return _answer(confirmed if sent.confirmed else sent.message)


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
    sent = service.pick_up(uniqueid, g.user, None if g.user.role == "agent" else g.user.extension.number)
    return _sent(sent, f"Your phone ({g.user.extension.number}) is ringing: answer it to take the caller.")


@bp.post("/waiting/<uniqueid>/redirect")
@acting
def redirect(uniqueid):
    target = request.form.get("target", "").strip() or request.form.get("number", "").strip()
    if target.startswith("group:"):
        sent = service.redirect(uniqueid, g.user, {"group_id": target[6:]})
        group = db.session.get(ExtensionGroup, int(target[6:]))
        return _sent(sent, f"The caller is on the way to group {group.name}.")
    sent = service.redirect(uniqueid, g.user, {"destination": target})
    return _sent(sent, f"The caller is on the way to {target}.")


@bp.post("/call")
@acting
def call():
    number = request.form.get("number", "")
    sent = service.click_to_call(g.user, number)
    return _sent(sent, f"Your phone ({g.user.extension.number}) is ringing: answer it and {number} is dialled.")


@bp.post("/pause")
@acting
def pause():
    # The form's reason and group are checked against the list and the extension's groups by the service; its
    # reason select is sent with Resume too, where it has no meaning.
    resuming = request.form.get("paused") == "false"
    message = pauses.pause(g.user, extension=request.form.get("extension") or None, paused=not resuming,
                           reason=None if resuming else request.form.get("reason") or None,
                           group_id=request.form.get("group_id") or None)
    return _answer(message)
