from ..api import api_blueprint, json_body
from . import service

dids_bp = api_blueprint("dids_api", "/api/dids")
trunks_bp = api_blueprint("trunks_api", "/api/trunks")


@dids_bp.get("")
def list_dids():
    return {"dids": [service.did_to_dict(d) for d in service.list_dids()]}


@dids_bp.post("")
def create_did():
    return service.create_did(json_body()), 201


@dids_bp.get("/<int:did_id>")
def get_did(did_id):
    return service.did_to_dict(service.get_did(did_id))


@dids_bp.patch("/<int:did_id>")
def update_did(did_id):
    return service.update_did(did_id, json_body())


@dids_bp.delete("/<int:did_id>")
def delete_did(did_id):
    service.delete_did(did_id)
    return "", 204


@trunks_bp.get("")
def list_trunks():
    return {"trunks": [service.trunk_to_dict(t) for t in service.list_trunks()]}


@trunks_bp.post("")
def create_trunk():
    return service.create_trunk(json_body()), 201


@trunks_bp.get("/<int:trunk_id>")
def get_trunk(trunk_id):
    return service.trunk_to_dict(service.get_trunk(trunk_id))


@trunks_bp.patch("/<int:trunk_id>")
def update_trunk(trunk_id):
    return service.update_trunk(trunk_id, json_body())


@trunks_bp.delete("/<int:trunk_id>")
def delete_trunk(trunk_id):
    service.delete_trunk(trunk_id)
    return "", 204
