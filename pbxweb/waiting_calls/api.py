"""Live state over the JSON API: waiting calls (and picking them up or redirecting them), extension
presence, and whether AMI is connected.

Every role reads it; an agent sees only the groups its own extension belongs to. When the listener is
not connected (or has died) the answer says so and marks what it serves as stale.
"""

from flask import g, request

from ..api import api_blueprint, json_body
from ..ext import db
from ..live import store
from ..paging import page_request
from . import service

# Every role reads live state and picks up waiting callers, an agent within its own groups; redirecting is
# for staff (auth/access.py).
bp = api_blueprint("live_api", "/api")


@bp.get("/waiting-calls")
def waiting_calls():
    ami = store.ami_status(db.session)
    groups = store.visible_group_ids(db.session, g.user)
    return {"waiting_calls": store.waiting_calls(db.session, groups), "stale": ami["stale"], "ami": ami}


@bp.get("/extensions/status")
def extension_status():
    ami = store.ami_status(db.session)
    groups = store.visible_group_ids(db.session, g.user)
    statuses, total, next_cursor = store.extension_statuses(db.session, groups, page_request(request.args))
    return {"extensions": statuses, "total": total, "next_cursor": next_cursor, "stale": ami["stale"], "ami": ami}


@bp.get("/ami")
def ami_status():
    return store.ami_status(db.session)


def _accepted(sent: service.Sent, status: str):
    """202 either way: `status` when Asterisk confirmed, "unknown" when the action went out unanswered."""
    return {"status": status if sent.confirmed else "unknown", "message": sent.message}, 202


@bp.post("/waiting-calls/<uniqueid>/pickup")
def pick_up(uniqueid):
    body = json_body({"extension"}, empty_ok=True)
    return _accepted(service.pick_up(uniqueid, g.user, body.get("extension")), "ringing")


@bp.post("/waiting-calls/<uniqueid>/redirect")
def redirect(uniqueid):
    body = json_body(set(service.REDIRECT_FIELDS))
    return _accepted(service.redirect(uniqueid, g.user, body), "redirected")


@bp.get("/waiting-calls/groups")
def waiting_call_groups():
    return {"groups": service.waiting_by_group()}


@bp.post("/calls")
def click_to_call():
    return _accepted(service.click_to_call(g.user, json_body({"number"}).get("number")), "ringing")
