"""Voicemail messages in the browser: who may open which mailbox, and deleting a message so that Asterisk
notices (VoicemailRefresh, sent through the AMI outbox). The files are Asterisk's (spool.py); this app only
reads and removes them, on the same host (PBX_VOICEMAIL_SPOOL)."""

from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami import outbox
from ..ext import db
from ..models import Extension
from . import spool


def spool_dir() -> Path:
    return Path(current_app.config["PBX_VOICEMAIL_SPOOL"])


def spool_available() -> bool:
    return spool_dir().is_dir()


def _context() -> str:
    return current_app.config["PBX_VOICEMAIL_CONTEXT"]


def own_mailbox(user) -> str | None:
    extension = user.extension
    return extension.number if extension is not None and extension.voicemail else None


def open_mailbox(user, number: str) -> Extension:
    """The extension whose mailbox this user may open: an admin any, everyone else their own only. A mailbox
    that is not theirs answers as one that does not exist (no probing for which numbers have one)."""
    if not spool.MAILBOX_NUMBER.fullmatch(number or ""):
        raise v.NotFound(f"mailbox {number}")
    extension = db.session.scalar(sa.select(Extension).where(Extension.number == number))
    mine = user.extension is not None and user.extension.number == number
    if extension is None or not extension.voicemail or not (user.role == "admin" or mine):
        raise v.NotFound(f"mailbox {number}")
    return extension


def mailboxes() -> list[Extension]:
    """Every extension with voicemail on (an admin's list of mailboxes)."""
    return list(db.session.scalars(sa.select(Extension).where(Extension.voicemail).order_by(Extension.number)))


def messages(user, number: str) -> list[spool.Message]:
    open_mailbox(user, number)
    if not spool_available():
        return []
    return spool.list_messages(spool_dir(), _context(), number)


def _message_base(number: str, folder: str, message: str) -> Path:
    try:
        return spool.message_base(spool_dir(), _context(), number, folder, message)
    except spool.BadPath:
        raise v.NotFound(f"message {folder}/{message}") from None


def audio(user, number: str, folder: str, message: str) -> Path:
    """The file to play: the message's plain-WAV copy."""
    open_mailbox(user, number)
    path = spool.playable_audio(_message_base(number, folder, message))
    if path is None:
        raise v.NotFound(f"message {folder}/{message} (or its wav copy: PBX_VOICEMAIL_FORMAT must include wav)")
    return path


def delete(user, number: str, folder: str, message: str) -> None:
    """Remove the message's files, then have Asterisk recount the mailbox (the phone's light, MWI events)."""
    open_mailbox(user, number)
    try:
        removed = spool.delete_message(_message_base(number, folder, message))
    except PermissionError:
        raise v.Unavailable({"_": "the app may not delete files in Asterisk's spool folder: add its user to the "
                                  "asterisk group"}) from None
    if not removed:
        raise v.NotFound(f"message {folder}/{message}")
    outbox.enqueue(db.session, "VoicemailRefresh", {"Context": _context(), "Mailbox": number})
    db.session.commit()
