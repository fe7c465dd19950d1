"""The dashboard's missed-callers panel (templates/dashboard/_missed.html): the fragment it polls itself with,
and its two buttons, Call back and Done. Each answers with the panel as it now is, the outcome in its notice
line; a refusal answers with the notice alone and its status (the page's toast says it)."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, g, render_template, request

from .. import validation as v
from ..ext import db
from ..site_time import local
from . import service

bp = Blueprint("missed", __name__, url_prefix="/missed")

OUTCOME_WORDS = {"abandoned": "hung up", "timeout": "timed out", "voicemail": "left a voicemail",
                 "no agents": "nobody available"}


def ago(then: datetime, now: datetime) -> str:
    """'3 min ago', as lists say times (UI.md); the absolute time is on hover."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


# The panel shows the newest this many; the rest are counted (the API lists them all).
PANEL_ROWS = 50


def _panel(group: int | None, notice: str | None = None):
    rows = service.for_user(g.user, group)
    return render_template("dashboard/_missed.html", missed=rows[:PANEL_ROWS], total=len(rows),
                           group_names=service.group_names(), group_filter=group,
                           days=current_app.config["PBX_MISSED_CALL_DAYS"], local=local, ago=ago,
                           now=datetime.now(timezone.utc).replace(tzinfo=None), outcome_words=OUTCOME_WORDS,
                           notice=notice)


def _refused(error: v.ServiceError):
    db.session.rollback()
    return render_template("dashboard/_notice.html", message=" ".join(error.errors.values()), failed=True), error.status


@bp.get("")
def panel():
    return _panel(service.parse_group(request.args.get("group")))


@bp.post("/<linkedid>/callback")
def call_back(linkedid):
    try:
        group = service.parse_group(request.args.get("group"))
        row, sent = service.call_back(linkedid, g.user)
    except v.ServiceError as error:
        return _refused(error)
    own = g.user.extension.number
    return _panel(group, f"Your phone ({own}) is ringing: answer it and {row.number} is dialled."
                  if sent.confirmed else sent.message)


@bp.post("/<linkedid>/done")
def done(linkedid):
    try:
        group = service.parse_group(request.args.get("group"))
        mark = service.mark_done(linkedid, g.user)
    except v.ServiceError as error:
        return _refused(error)
    return _panel(group, f"{service.shown_number(mark.number)} marked done.")
