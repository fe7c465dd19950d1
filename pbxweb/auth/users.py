"""The users page (admin only): create a login with a role and its own extension, change them, deactivate,
reset a password; list and revoke API tokens. Generated passwords are shown once."""

from flask import Blueprint, g, render_template, request

from ..models import ROLES
from ..pages import closing, form_data
from ..validation import ServiceError
from . import service

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.get("")
def list_page():
    return render_template("users/list.html", users=service.list_users(), tokens=service.list_tokens())


def _tokens_revoked(user) -> str:
    """The user's rows leave the token table (a reset or a deactivation revoked them): markup only, no query
    between the commit and the answer, so a new password shown once cannot be lost to a failing one."""
    return render_template("users/_tokens_revoked.html", user=user)


def _form(user, values, errors, status=200):
    return render_template("users/_form.html", user=user, values=values, errors=errors, roles=ROLES), status


@bp.get("/new")
def new_form():
    return _form(None, {"role": "agent"}, {})


@bp.post("")
def create():
    data = form_data(("username", "role", "extension"))
    try:
        user, password = service.create_user(data.get("username", "").strip(), data.get("role"), None,
                                              (data.get("extension") or "").strip() or None)
    except ServiceError as error:
        return _form(None, request.form, error.errors, error.status)
    return render_template("users/_created.html", user=user, password=password, oob="afterbegin:#user-rows")


@bp.get("/<int:user_id>/edit")
def edit_form(user_id):
    user = service.get_or_not_found(service.User, f"user {user_id}", id=user_id)
    values = {"role": user.role, "extension": user.extension.number if user.extension else "", "is_active": user.is_active}
    return _form(user, values, {})


@bp.post("/<int:user_id>")
def update(user_id):
    data = form_data(("role", "extension"), ("is_active",))
    try:
        user = service.update_user(user_id, data, g.user)
    except ServiceError as error:
        if error.status == 404:
            raise
        return _form(service.get_or_not_found(service.User, f"user {user_id}", id=user_id), request.form, error.errors, error.status)
    return closing(render_template("users/_row.html", user=user, oob=f"outerHTML:#user-{user_id}")
                   + ("" if user.is_active else _tokens_revoked(user)))


@bp.post("/<int:user_id>/password")
def reset_password(user_id):
    user, password = service.reset_password(user_id)
    return render_template("users/_password.html", user=user, password=password) + _tokens_revoked(user)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id):
    service.revoke_token(token_id)
    return ""  # the row goes (hx-swap outerHTML)
