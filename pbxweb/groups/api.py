from ..api import api_blueprint, json_body
from ..auth.access import visible_groups
from . import service

bp = api_blueprint("groups_api", "/api/groups")


@bp.get("")
def list_groups():
    return {"groups": [service.to_dict(g) for g in service.list_groups(visible_groups())]}


@bp.post("")
def create_group():
    return service.create_group(json_body()), 201


@bp.get("/<int:group_id>")
def get_group(group_id):
    return service.to_dict(service.get_group(group_id))


@bp.patch("/<int:group_id>")
def update_group(group_id):
    return service.update_group(group_id, json_body())


@bp.put("/<int:group_id>/members")
def replace_members(group_id):
    body = json_body({"members"})
    return service.replace_members(group_id, body.get("members"))


@bp.delete("/<int:group_id>")
def delete_group(group_id):
    service.delete_group(group_id)
    return "", 204
