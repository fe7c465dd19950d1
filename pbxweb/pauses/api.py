"""Pause reasons and pausing over the JSON API."""

from flask import g

from ..api import api_blueprint, json_body
from . import service

bp = api_blueprint("pauses_api", "/api")


@bp.get("/pause-reasons")
def list_reasons():
    return {"pause_reasons": [service.to_dict(r) for r in service.reasons()]}


@bp.post("/pause-reasons")
def create_reason():
    return service.to_dict(service.create_reason(json_body())), 201


@bp.delete("/pause-reasons/<int:reason_id>")
def delete_reason(reason_id):
    service.delete_reason(reason_id)
    return "", 204


@bp.post("/pause")
def pause():
    body = json_body({"extension", "paused", "reason", "group_id"})
    message = service.pause(g.user, extension=body.get("extension"), paused=body.get("paused", True),
                            reason=body.get("reason"), group_id=body.get("group_id"))
    return {"status": "paused" if body.get("paused", True) else "resumed", "message": message}, 202
