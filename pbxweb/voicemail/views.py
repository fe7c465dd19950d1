"""Voicemail pages: a mailbox's messages listed newest first, played in the browser (range requests, so the
player can seek) and deleted after a confirmation. An agent opens their own mailbox; an admin any."""

from flask import Blueprint, g, redirect, render_template, send_file, url_for

from ..live import store as live
from ..ext import db
from . import service

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")


@bp.get("")
def index():
    own = service.own_mailbox(g.user)
    if g.user.role != "admin":
        if own is None:
            return render_template("voicemail/none.html")
        return redirect(url_for("voicemail.mailbox", number=own))
    extensions = service.mailboxes()
    return render_template("voicemail/index.html", extensions=extensions,
                           statuses=live.statuses_of(db.session, [e.number for e in extensions]))


@bp.get("/<number>")
def mailbox(number):
    extension = service.open_mailbox(g.user, number)
    return render_template("voicemail/mailbox.html", extension=extension, messages=service.messages(g.user, number),
                           available=service.spool_available())


@bp.get("/<number>/<folder>/<message>.wav")
def audio(number, folder, message):
    # conditional=True answers Range requests (206) and If-Modified-Since: the player seeks without a download.
    response = send_file(service.audio(g.user, number, folder, message), mimetype="audio/wav", conditional=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<number>/<folder>/<message>/delete")
def delete(number, folder, message):
    service.delete(g.user, number, folder, message)
    return ""
