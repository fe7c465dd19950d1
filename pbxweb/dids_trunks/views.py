"""DID pages: a DID's destination is picked from the groups and extensions (trunk pages: trunk_views.py)."""

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from ..ext import db
from ..models import Extension, ExtensionGroup
from ..pages import closing, form_data, listing_changed, page_or_fragment
from ..validation import ServiceError
from . import service

dids_bp = Blueprint("dids", __name__, url_prefix="/dids")

# Enough for a small business's picker; past it, the number is typed (the list holds the first ones).
DESTINATION_CHOICES = 1000


def _destinations() -> dict:
    groups = db.session.execute(sa.select(ExtensionGroup.id, ExtensionGroup.name).order_by(ExtensionGroup.name)).all()
    extensions = db.session.execute(
        sa.select(Extension.number, Extension.name).order_by(Extension.number).limit(DESTINATION_CHOICES)).all()
    return {"groups": groups, "extensions": extensions}


def _did_form(did: dict | None, values, errors, status=200):
    return render_template("dids/_form.html", did=did, values=values, errors=errors, **_destinations()), status


def _did_data() -> dict:
    """The form's one destination picker ("group:3", "extension:1001") as the service's two fields."""
    data = form_data(("number", "description"), ("is_active",))
    kind, _, target = request.form.get("target", "").partition(":")
    if kind or target:
        data["destination_type"], data["destination"] = kind, target
    return data


def _did_errors(errors: dict) -> dict:
    shown = dict(errors)
    for field in ("destination_type", "destination"):
        if field in shown:
            shown.setdefault("target", shown.pop(field))
    return shown


def _did_list_context():
    return {"dids": [service.did_to_dict(d) for d in service.list_dids()], **_destinations()}


@dids_bp.get("")
def list_page():
    return page_or_fragment("dids/list.html", "dids/_table.html", **_did_list_context())


@dids_bp.get("/new")
def new_form():
    return _did_form(None, {"is_active": True}, {})


@dids_bp.post("")
def create():
    try:
        did = service.create_did(_did_data())
    except ServiceError as error:
        return _did_form(None, request.form, _did_errors(error.errors), error.status)
    return listing_changed(closing())


@dids_bp.get("/<int:did_id>/edit")
def edit_form(did_id):
    did = service.did_to_dict(service.get_did(did_id))
    return _did_form(did, {**did, "target": f"{did['destination_type']}:{did['destination']}"}, {})


@dids_bp.post("/<int:did_id>")
def update(did_id):
    try:
        did = service.update_did(did_id, _did_data())
    except ServiceError as error:
        if error.status == 404:
            raise
        return _did_form(service.did_to_dict(service.get_did(did_id)), request.form, _did_errors(error.errors), error.status)
    return closing(render_template("dids/_row.html", did=did, oob=f"outerHTML:#did-{did_id}", **_destinations()))


@dids_bp.post("/<int:did_id>/active")
def toggle_active(did_id):
    did = service.update_did(did_id, {"is_active": "is_active" in request.form})
    return render_template("dids/_row.html", did=did, oob=None, **_destinations())


@dids_bp.post("/<int:did_id>/delete")
def delete(did_id):
    service.delete_did(did_id)
    return listing_changed("")
