"""Login and logout for the pages; the API authenticates with bearer tokens instead (pbxweb/api.py)."""

import re

from flask import Blueprint, redirect, render_template, request, session, url_for

from ..validation import TooManyRequests
from . import service, sessions

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        try:
            user = service.sign_in(request.form.get("username", ""), request.form.get("password", ""), request.remote_addr)
        except TooManyRequests as refused:
            error, status = refused.errors["_"], refused.status
        else:
            if user is not None:
                # A new session from scratch: nothing of the anonymous one survives.
                session.clear()
                session["key"] = sessions.start(user)
                return redirect(_safe_next(request.args.get("next")))
            error, status = "Unknown user or wrong password.", 401
    return render_template("auth/login.html", error=error), status


def _safe_next(target: str | None) -> str:
    """Back to the page that asked for a sign-in, if it is a path on this site — never another site.

    Decided on what a browser would make of the Location header: it drops tab, CR and LF anywhere in a URL
    and reads `\\` as `/`, so `/\\evil.com` and `/<tab>/evil.com` are `//evil.com`, another host."""
    if not target:
        return url_for("dashboard.index")
    seen = re.sub(r"[\t\r\n]", "", target).replace("\\", "/")
    # A path: one slash, then no second one (`//host` is another site), and nothing unprintable for a header.
    on_this_site = seen.startswith("/") and not seen.startswith("//") and seen.isprintable()
    return seen if on_this_site else url_for("dashboard.index")


@bp.post("/logout")
def logout():
    # Ended on the server: the cookie, replayed, opens nothing.
    if "key" in session:
        sessions.end(session["key"])
    session.clear()
    return redirect(url_for("auth.login"))
