"""Trunk pages: host, port, transport, credentials, register, inbound IPs, and the registration state as
Asterisk last reported it (its word, its reason when it gives one, and when)."""

from flask import Blueprint, current_app, render_template, request

from ..pages import closing, form_data
from ..validation import ServiceError
from . import service

trunks_bp = Blueprint("trunks", __name__, url_prefix="/trunks")

TRUNK_FIELDS = ("name", "host", "port", "transport", "username", "password", "match", "codecs", "context")


def _trunk_form(trunk: dict | None, values, errors, status=200):
    return render_template("trunks/_form.html", trunk=trunk, values=values, errors=errors,
                           transports=service.TRANSPORTS), status


def _trunk_data(editing: bool) -> dict:
    data = form_data(TRUNK_FIELDS, ("register", "is_active"))
    if not data.get("username"):
        data.update(username=None, password=None)  # no user name: the provider does not authenticate us
    elif editing and not data.get("password"):
        del data["password"]  # left empty on an edit: keep the one it has
    return data


@trunks_bp.get("")
def list_page():
    models = service.list_trunks()
    states, asked = service.registration_states(current_app.config, models)
    return render_template("trunks/list.html", trunks=[service.trunk_to_dict(t) for t in models], states=states,
                           asked=asked)


@trunks_bp.get("/new")
def new_form():
    return _trunk_form(None, {"port": 5060, "is_active": True}, {})


@trunks_bp.post("")
def create():
    try:
        trunk = service.create_trunk(_trunk_data(editing=False))
    except ServiceError as error:
        return _trunk_form(None, request.form, error.errors, error.status)
    return closing(render_template("trunks/_row.html", trunk=trunk, states={}, oob="afterbegin:#trunk-rows")
                   + '<div id="trunks-empty" hx-swap-oob="true"></div>')


@trunks_bp.get("/<int:trunk_id>/edit")
def edit_form(trunk_id):
    trunk = service.trunk_to_dict(service.get_trunk(trunk_id))
    return _trunk_form(trunk, {**trunk, "match": ", ".join(trunk["match"]), "codecs": ",".join(trunk["codecs"])}, {})


@trunks_bp.post("/<int:trunk_id>")
def update(trunk_id):
    try:
        trunk = service.update_trunk(trunk_id, _trunk_data(editing=True))
    except ServiceError as error:
        if error.status == 404:
            raise
        return _trunk_form(service.trunk_to_dict(service.get_trunk(trunk_id)), request.form, error.errors, error.status)
    return closing(render_template("trunks/_row.html", trunk=trunk, states={}, oob=f"outerHTML:#trunk-{trunk_id}"))


@trunks_bp.post("/<int:trunk_id>/delete")
def delete(trunk_id):
    service.delete_trunk(trunk_id)
    return ""
