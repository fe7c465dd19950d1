"""Missed callers to call back over the JSON API: the list (of one group, or every group the user sees), and
calling one back or marking one done by the id of one of its calls (the row's `id`: its newest try). A row's
`wait_total` is every try's wait added up, `wait_longest` the longest one."""

from flask import g, request

from ..api import api_blueprint, json_body
from . import service

bp = api_blueprint("missed_api", "/api")


@bp.get("/missed-calls")
def list_missed():
    rows = service.for_user(g.user, service.parse_group(request.args.get("group")))
    names = service.group_names()
    return {"missed_calls": [service.to_dict(row, names) for row in rows],
            "since": service.window_start().isoformat() + "+00:00"}


@bp.post("/missed-calls/<linkedid>/callback")
def call_back(linkedid):
    json_body(set(), empty_ok=True)
    row, sent = service.call_back(linkedid, g.user)
    return {"status": "ringing" if sent.confirmed else "unknown", "message": sent.message,
            "missed_call": service.to_dict(row, service.group_names())}, 202


@bp.post("/missed-calls/<linkedid>/done")
def done(linkedid):
    json_body(set(), empty_ok=True)
    mark = service.mark_done(linkedid, g.user)
    return {"done": service.mark_to_dict(mark), "group": mark.group, "number": mark.number}
