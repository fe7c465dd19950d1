"""Live state over the JSON API: waiting calls, extension presence, and whether AMI is connected.

Every role reads it; an agent sees only the groups its own extension belongs to. When the listener is
not connected (or has died) the answer says so and marks what it serves as stale.
"""

from flask import g

from ..api import api_blueprint
from ..ext import db
from ..live import store
from ..models import ROLES

bp = api_blueprint("live_api", "/api", read_roles=ROLES)


@bp.get("/waiting-calls")
def waiting_calls():
    ami = store.ami_status(db.session)
    groups = store.visible_group_ids(db.session, g.api_user)
    return {"waiting_calls": store.waiting_calls(db.session, groups), "stale": ami["stale"], "ami": ami}


@bp.get("/extensions/status")
def extension_status():
    ami = store.ami_status(db.session)
    groups = store.visible_group_ids(db.session, g.api_user)
    return {"extensions": store.extension_statuses(db.session, groups), "stale": ami["stale"], "ami": ami}


@bp.get("/ami")
def ami_status():
    return store.ami_status(db.session)
