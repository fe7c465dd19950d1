"""Asterisk's voicemail spool, read and pruned as app_voicemail lays it out:
`<spool>/<context>/<mailbox>/<folder>/msgNNNN.txt` (the message's facts) beside its audio, one file per
format (`msgNNNN.WAV` is wav49, `.gsm`, `.wav` plain PCM — the one a browser plays).

Nothing here takes a path from a request: the mailbox number and the message number are digits, checked
before a path is built, and the folder is one of Asterisk's own names. What a message file says (the
caller's number and name) is the caller's text, hostile: it is only ever shown escaped.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

# The folders a person sees: new, heard, and marked urgent. (Work, Family… are sorted by hand on a phone.)
FOLDERS = ("INBOX", "Old", "Urgent")
MAILBOX_NUMBER = re.compile(r"\d{2,6}")
MESSAGE_NUMBER = re.compile(r"\d{1,4}")
MESSAGE_FILE = re.compile(r"msg(\d{4})\.txt")
CALLERID = re.compile(r'\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')
# A message file is a few hundred bytes; more than this is not one Asterisk wrote.
MAX_INFO_BYTES = 8192


class BadPath(ValueError):
    """A mailbox, folder or message that cannot be one of Asterisk's."""


@dataclass(frozen=True)
class Message:
    folder: str
    number: int
    caller_name: str
    caller_number: str
    received_at: datetime | None
    duration: int

    @property
    def id(self) -> str:
        return f"{self.number:04d}"

    @property
    def is_new(self) -> bool:
        return self.folder != "Old"


def mailbox_dir(spool: Path, context: str, mailbox: str) -> Path:
    if not MAILBOX_NUMBER.fullmatch(mailbox or ""):
        raise BadPath("mailbox")
    return spool / context / mailbox


def message_base(spool: Path, context: str, mailbox: str, folder: str, number: str) -> Path:
    """`…/INBOX/msg0003` (no extension): the stem every file of that message shares."""
    if folder not in FOLDERS:
        raise BadPath("folder")
    if not MESSAGE_NUMBER.fullmatch(number or ""):
        raise BadPath("message")
    return mailbox_dir(spool, context, mailbox) / folder / f"msg{int(number):04d}"


def parse_info(text: str) -> dict[str, str]:
    """The `[message]` section of a msgNNNN.txt as key → value (the first `=` splits; `;` lines are comments)."""
    info: dict[str, str] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "message" and "=" in line:
            key, _, value = line.partition("=")
            info.setdefault(key.strip(), value.strip())
    return info


def message_from_info(folder: str, number: int, info: dict[str, str]) -> Message:
    callerid = info.get("callerid", "")
    match = CALLERID.match(callerid)
    name, caller = (match.group("name").strip(), match.group("number").strip()) if match else ("", callerid.strip())
    origtime = info.get("origtime", "")
    duration = info.get("duration", "")
    return Message(
        folder=folder,
        number=number,
        caller_name="" if name.lower() == "unknown" else name,
        caller_number="" if caller.lower() == "unknown" else caller,
        received_at=datetime.fromtimestamp(int(origtime), timezone.utc) if origtime.isdigit() else None,
        duration=int(duration) if duration.isdigit() else 0,
    )


def list_messages(spool: Path, context: str, mailbox: str) -> list[Message]:
    """Every message of the mailbox's folders, newest first."""
    found = []
    base = mailbox_dir(spool, context, mailbox)
    for folder in FOLDERS:
        directory = base / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            match = MESSAGE_FILE.fullmatch(path.name)
            if not match or not path.is_file():
                continue
            with open(path, "rb") as fh:
                text = fh.read(MAX_INFO_BYTES).decode("utf-8", "replace")
            found.append(message_from_info(folder, int(match.group(1)), parse_info(text)))
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(found, key=lambda m: (m.received_at or epoch, m.folder, m.number), reverse=True)


def playable_audio(base: Path) -> Path | None:
    """The message's plain-WAV copy (format `wav`), the one browsers play; None if Asterisk kept none."""
    path = base.with_name(base.name + ".wav")
    return path if path.is_file() and base.with_name(base.name + ".txt").is_file() else None


def delete_message(base: Path) -> bool:
    """Remove a message: its facts first (so it is no longer listed, by us or by Asterisk's count), then every
    audio file of it. False when there was no such message."""
    info = base.with_name(base.name + ".txt")
    if not info.is_file():
        return False
    info.unlink()
    for path in base.parent.glob(base.name + ".*"):
        path.unlink(missing_ok=True)
    return True
