"""The pause reasons page (admins): the short list agents pick from when they pause."""

from flask import Blueprint, render_template, request

from ..pages import refused
from ..validation import ServiceError
from . import service

bp = Blueprint("pause_reasons", __name__, url_prefix="/pause-reasons")


@bp.get("")
def list_page():
    return render_template("pause_reasons/list.html", reasons=service.reasons(), errors={}, values={})


@bp.post("")
def create():
    try:
        service.create_reason({"name": request.form.get("name", "")})
    except ServiceError as error:
        return refused("pause_reasons/_list.html", error, reasons=service.reasons(), values=request.form)
    return render_template("pause_reasons/_list.html", reasons=service.reasons(), errors={}, values={})


@bp.post("/<int:reason_id>/delete")
def delete(reason_id):
    service.delete_reason(reason_id)
    return render_template("pause_reasons/_list.html", reasons=service.reasons(), errors={}, values={})
