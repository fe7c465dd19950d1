"""Extension pages: the list (search as you type, sort, paging), create and edit in a dialog with the
service's own errors under each field, the SIP password shown once, delete after a confirmation."""

from flask import Blueprint, Response, g, make_response, render_template, request, stream_with_context

from ..errors import error_response
from .. import audit, mail
from ..ext import db
from ..live import store as live
from ..pages import closing, form_data, listing_changed, page_or_fragment, refused
from ..paging import page_request
from ..validation import Gone, ServiceError
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


@bp.get("/options")
def options():
    """The extensions matching what was typed, as <option>s for a picker. htmx sends the typing under the input's
    own name (a user's `extension`), or `q`."""
    typed = request.args.get("q") or request.args.get("extension") or ""
    page = service.list_extensions(page_request({"q": typed, "limit": "20"}))
    return render_template("extensions/_options.html", extensions=[row.Extension for row in page.rows])


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
    return listing_changed(render_template("extensions/_created.html", extension=extension, password=password, pin=pin,
                                           setup=service.phone_setup(extension, request.host)))


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
    return listing_changed("")


@bp.post("/<number>/password")
def new_password(number):
    extension, password = service.set_password(number)
    return render_template("extensions/_secret.html", extension=extension, password=password, regenerated=True,
                           setup=service.phone_setup(extension, request.host))


@bp.get("/<number>/phone")
def phone_card(number):
    """The printable setup card; the password is on it only where it was just made (the created dialog)."""
    extension = service.get_extension(number)
    return render_template("extensions/phone.html", extension=extension,
                           setup=service.phone_setup(extension, request.host))


@bp.post("/<number>/phone/email")
def email_phone_card(number):
    """Mails the card, password included, to the extension's own address: the phone's owner sets it up."""
    extension = service.get_extension(number)
    if not extension.email:
        return error_response(400, {"email": f"extension {number} has no e-mail address: add one first"})
    setup = service.phone_setup(extension, request.host)
    mail.send(extension.email, f"Your phone: extension {number}", service.phone_setup_text(setup, extension.sip_password))
    audit.record("mail", "extension", number, {"phone setup card": f"e-mailed to {extension.email}"})
    db.session.commit()
    return render_template("extensions/_mailed.html", extension=extension)


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
    if with_passwords:
        csv_io.record_password_export()
    name = "extensions-with-passwords.csv" if with_passwords else "extensions.csv"
    lines = stream_with_context(csv_io.export_rows(with_passwords))
    return Response(lines, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/import/sample.csv")
def import_sample():
    return Response(csv_io.SAMPLE, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="extensions-sample.csv"'})


@bp.get("/import")
def import_page():
    return _import_page(None, {}, 200)


@bp.post("/import")
def import_csv():
    """Upload → preview (every row checked, nothing written) → apply (all rows or none) → the generated
    passwords offered for one download."""
    if "apply" in request.form:
        try:
            result = csv_io.apply_upload(request.form.get("token"), g.user.id)
        except Gone as gone:
            return _import_page(None, gone.errors, gone.status)
    else:
        upload = request.files.get("file")
        raw = upload.read() if upload else b""
        if not raw:
            return _import_page(None, {"file": "is missing: choose a CSV file"}, 400)
        try:
            result = csv_io.preview_upload(raw, g.user.id)
        except csv_io.UnreadableFile as error:
            return _import_page(None, error.errors, 400)
    return _import_page(result, {}, 400 if result.errors else 200)


def _import_page(result, errors: dict, status: int):
    response = make_response(render_template("extensions/import.html", result=result, errors=errors), status)
    # A preview or a result holds a token that opens the file or the passwords: no cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/import/passwords")
def import_credentials():
    """The passwords an import generated, as a CSV download that works once (the token is in the form, so
    it never lands in an access log)."""
    data = csv_io.download_credentials(request.form.get("token"), g.user.id)
    return Response(data, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="sip-passwords.csv"', "Cache-Control": "no-store"})
