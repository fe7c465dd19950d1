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
    error = None
    if request.method == "POST":
        user = service.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            session["user_id"] = user.id
            session["username"] = user.username
            return redirect(url_for("auth.index"))
        error = "Unknown user or wrong password."
    return render_template("auth/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
