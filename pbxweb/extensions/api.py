from flask import request

from ..api import api_blueprint, json_body
from ..paging import page_request
from . import service

bp = api_blueprint("extensions_api", "/api/extensions")


@bp.get("")
def list_extensions():
    page = service.list_extensions(page_request(request.args))
    return {"extensions": [service.to_dict(row.Extension) for row in page.rows], "total": page.total,
            "next_cursor": page.next_cursor}


@bp.post("")
def create_extension():
    extension, password = service.create_extension(json_body())
    return {**service.to_dict(extension), "password": password}, 201


@bp.get("/<number>")
def get_extension(number):
    return service.to_dict(service.get_extension(number))


@bp.patch("/<number>")
def update_extension(number):
    return service.to_dict(service.update_extension(number, json_body()))


@bp.delete("/<number>")
def delete_extension(number):
    service.delete_extension(number)
    return "", 204


@bp.post("/<number>/password")
def regenerate_password(number):
    # Only no body or {} generates a password: anything else that is not {"password": …} is a mistake.
    body = json_body({"password"}, empty_ok=True)
    extension, password = service.set_password(number, body.get("password"))
    return {**service.to_dict(extension), "password": password}
