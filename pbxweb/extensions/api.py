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
    extension, password, pin = service.create_extension(json_body())
    return {**service.to_dict(extension), "password": password, **_pin(pin)}, 201


def _pin(pin: str | None) -> dict:
    """A voicemail PIN made by this request, shown this once."""
    return {"voicemail_pin": pin} if pin else {}


@bp.get("/<number>")
def get_extension(number):
    return service.to_dict(service.get_extension(number))


@bp.patch("/<number>")
def update_extension(number):
    extension, pin = service.update_extension(number, json_body())
    return {**service.to_dict(extension), **_pin(pin)}


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


@bp.post("/<number>/voicemail-pin")
def reset_voicemail_pin(number):
    json_body(set(), empty_ok=True)
    extension, pin = service.reset_voicemail_pin(number)
    return {**service.to_dict(extension), "voicemail_pin": pin}
