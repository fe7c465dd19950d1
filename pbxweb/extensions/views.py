"""Extension pages: the list (search as you type, sort, paging), create and edit in a dialog with the
service's own errors under each field, the SIP password shown once, delete after a confirmation."""

import base64

from flask import Blueprint, Response, flash, g, redirect, render_template, request, stream_with_context, url_for

from ..errors import error_response
from ..ext import db
from ..live import store as live
from ..pages import closing, form_data, page_or_fragment, refused
from ..paging import page_request
from ..validation import ServiceError
from . import csv_io, service

bp = Blueprint("extensions", __name__, url_prefix="/extensions")

FIELDS = ("number", "name", "email", "password", "context", "codecs", "max_contacts")
CHECKBOXES = ("voicemail", "is_active")


def _listing() -> dict:
    sort = request.args.get("sort", "number")
    if sort not in service.SORTS:
        sort = "number"
    descending = request.args.get("dir") == "desc"
    page = service.list_extensions(page_request(request.args, default_limit=50), sort, descending)
    extensions = [row.Extension for row in page.rows]
    return {
        "page": page,
        "extensions": extensions,
        "statuses": live.statuses_of(db.session, [e.number for e in extensions]),
        "ami": live.ami_status(db.session),
        "q": request.args.get("q", ""),
        "sort": sort,
        "descending": descending,
    }


@bp.get("")
def list_page():
    return page_or_fragment("extensions/list.html", "extensions/_table.html", **_listing())


@bp.get("/new")
def new_form():
    return render_template("extensions/_form.html", extension=None, values={}, errors={})


def _row_context(extension):
    return {"extension": extension, "statuses": live.statuses_of(db.session, [extension.number]),
            "ami": live.ami_status(db.session)}


@bp.post("")
def create():
    # An empty field is "use the default" (an empty password: generate one); number and name are required.
    data = {k: v for k, v in form_data(FIELDS, CHECKBOXES).items() if v != "" or k in ("number", "name")}
    try:
        extension, password, pin = service.create_extension(data)
    except ServiceError as error:
        return refused("extensions/_form.html", error, extension=None, values=request.form)
    return render_template("extensions/_created.html", password=password, pin=pin, **_row_context(extension))


@bp.get("/<number>/edit")
def edit_form(number):
    extension = service.get_extension(number)
    return render_template("extensions/_form.html", extension=extension, values=service.to_dict(extension), errors={})


@bp.post("/<number>")
def update(number):
    data = form_data(tuple(f for f in FIELDS if f != "password"), CHECKBOXES)
    if data.get("email") == "":
        data["email"] = None
    try:
        extension, pin = service.update_extension(number, data)
    except ServiceError as error:
        if error.status == 404:
            raise
        return refused("extensions/_form.html", error, extension=service.get_extension(number), values=request.form)
    row = render_template("extensions/_row.html", oob_for=number, **_row_context(extension))
    if pin:
        # The new mailbox's PIN is shown once, in the panel, instead of closing it.
        return render_template("extensions/_pin.html", extension=extension, pin=pin) + row
    return closing(row)


@bp.post("/<number>/delete")
def delete(number):
    service.delete_extension(number)
    return render_template("extensions/_deleted.html", total=service.count())


@bp.post("/<number>/password")
def new_password(number):
    extension, password = service.set_password(number)
    return render_template("extensions/_secret.html", extension=extension, password=password, regenerated=True)


@bp.post("/<number>/voicemail-pin")
def new_voicemail_pin(number):
    extension, pin = service.reset_voicemail_pin(number)
    return render_template("extensions/_pin.html", extension=extension, pin=pin, regenerated=True)


# --- CSV --------------------------------------------------------------------------------------------------


@bp.get("/export.csv")
def export_csv():
    # Passwords leave only when an admin asks for them by name.
    with_passwords = request.args.get("passwords") == "1"
    if with_passwords and g.user.role != "admin":
        return error_response(403, {"_": "only an admin may export SIP passwords"})
    name = "extensions-with-passwords.csv" if with_passwords else "extensions.csv"
    lines = stream_with_context(csv_io.export_rows(with_passwords))
    return Response(lines, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/import")
def import_page():
    return render_template("extensions/import.html", result=None, errors={}, content=None)


@bp.post("/import")
def import_csv():
    """Upload → preview (every row checked, nothing written) → apply (all rows or none)."""
    applying = "apply" in request.form
    if applying:
        raw = base64.b64decode(request.form.get("content", ""), validate=False)
    else:
        upload = request.files.get("file")
        raw = upload.read() if upload else b""
        if not raw:
            return render_template("extensions/import.html", result=None, content=None,
                                   errors={"file": "is missing: choose a CSV file"}), 400
    try:
        result = csv_io.import_extensions(raw, dry_run=not applying)
    except csv_io.UnreadableFile as error:
        return render_template("extensions/import.html", result=None, content=None, errors=error.errors), 400
    if applying and result.created:
        flash(f"Imported {result.created} extension{'s' if result.created != 1 else ''}.", "success")
        return redirect(url_for("extensions.list_page"))
    return render_template("extensions/import.html", result=result, errors={},
                           content=base64.b64encode(raw).decode() if not result.errors else None), (400 if result.errors else 200)
