"""Mail the app sends itself (a phone's setup card) through the SMTP server the settings name. Voicemail is
mailed by Asterisk, not from here."""

import smtplib
import socket
from email.message import EmailMessage

from flask import current_app

from .validation import ServiceError


class MailNotSent(ServiceError):
    status = 503


def configured() -> bool:
    return bool(current_app.config.get("PBX_SMTP_HOST"))


def send(to: str, subject: str, body: str) -> None:
    """Hand one plain-text message to the SMTP server; MailNotSent (503) says why it could not."""
    config = current_app.config
    if not configured():
        raise MailNotSent({"_": "no mail server is set up (PBX_SMTP_HOST)"})
    message = EmailMessage()
    message["From"] = config.get("PBX_SMTP_FROM") or f"mini-pbx@{socket.getfqdn()}"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(config["PBX_SMTP_HOST"], config["PBX_SMTP_PORT"], timeout=15) as smtp:
            if config["PBX_SMTP_STARTTLS"]:
                smtp.starttls()
            if config.get("PBX_SMTP_USERNAME"):
                smtp.login(config["PBX_SMTP_USERNAME"], config.get("PBX_SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise MailNotSent({"_": f"the mail server did not take the message: {error}"}) from error
