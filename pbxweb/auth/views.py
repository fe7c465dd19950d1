"""Login and logout for the pages; the API authenticates with bearer tokens instead (pbxweb/api.py)."""

from flask import Blueprint, redirect, render_template, request, session, url_for

from . import service

bp = Blueprint("auth", __name__)


@bp.get("/")
def index():
    if "user_id" not in session:
        return redirect(url_for("auth.login"))
    return render_template("auth/home.html", username=session.get("username"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        try:
            user = service.sign_in(request.form.get("username", ""), request.form.get("password", ""), request.remote_addr)
        except service.TooManyAttempts as refused:
            error, status = refused.errors["_"], refused.status
        else:
            if user is not None:
                session.clear()
                session["user_id"] = user.id
                session["username"] = user.username
                return redirect(url_for("auth.index"))
            error, status = "Unknown user or wrong password.", 401
    return render_template("auth/login.html", error=error), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
