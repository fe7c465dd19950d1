"""Extensions: the one home of their rules, used by the pages, the JSON API and the CLI."""

import re
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from .. import audit
from .. import validation as v
from ..ext import db
from ..models import Did, Extension, ExtensionGroup, GroupMember
from ..paging import Page, PageRequest, contains, fetch_page
from ..realtime import store
from ..realtime.mapping import RealtimeSettings, callerid
from ..service_base import commit, ensure_unique, get_or_not_found, lock_rows

FIELDS = {"number", "name", "email", "password", "context", "codecs", "voicemail", "max_contacts", "is_active"}
# Characters that break the `"Name" <number>` callerid string or a SIP header.
NAME_FORBIDDEN = re.compile(r'["<>\\]')
CALLERID_WIDTH = 40  # ps_endpoints.callerid is varchar(40)


def _unknown_fields(errors: v.Errors, data: dict) -> None:
    for field in sorted(set(data) - FIELDS):
        errors.check(field, False, "is not a field of an extension")


def _name(errors: v.Errors, value, number: str | None) -> str | None:
    name = v.text(errors, "name", value, max_length=CALLERID_WIDTH)
    if name is None:
        return None
    if not errors.check("name", NAME_FORBIDDEN.search(name) is None, "must not contain \" < > or \\"):
        return None
    if number is not None:
        width = len(callerid(name, number))
        errors.check(
            "name",
            width <= CALLERID_WIDTH,
            f"is too long: the caller ID {callerid(name, number)} would be {width} characters, "
            f"Asterisk keeps {CALLERID_WIDTH}",
        )
    return name


def _number(errors: v.Errors, value) -> str | None:
    number = v.digits(errors, "number", value, min_length=2, max_length=6)
    if number is None:
        return None
    # The dialplan sends anything that starts with the outside-line prefix to a trunk.
    prefix = current_app.config["PBX_OUTBOUND_PREFIX"]
    if errors.check("number", not number.startswith(prefix), f"must not start with {prefix}, the outside-line prefix"):
        return number
    return None


def search(query, q: str | None):
    """Extensions whose number or name contains `q`."""
    if q:
        query = query.where(sa.or_(contains(Extension.number, q), contains(Extension.name, q)))
    return query


# How the extension list can be ordered: the key columns of its keyset (number breaks ties).
SORTS = {"number": (Extension.number,), "name": (Extension.name, Extension.number)}


def list_extensions(page: PageRequest, sort: str = "number", descending: bool = False) -> Page:
    """One page of extensions (rows with `.Extension`), the total matching `q`, and the cursors around it."""
    keys = SORTS.get(sort, SORTS["number"])
    query = search(sa.select(Extension, *keys), page.q)
    return fetch_page(db.session, query, keys, page, descending=descending)


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Extension))


def get_extension(number: str, *, lock: bool = False) -> Extension:
    return get_or_not_found(Extension, f"extension {number}", number=number, lock=lock)


def lock_extension(number: str) -> Extension:
    """The extension and then the groups it rings in (their queue rows are rewritten too), locked in the
    one order every writer uses."""
    extension = get_extension(number, lock=True)
    group_ids = db.session.scalars(sa.select(GroupMember.group_id).where(GroupMember.extension_id == extension.id))
    lock_rows(ExtensionGroup, group_ids)
    return extension


def _check_number_free(number: str, current: Extension | None = None) -> None:
    ensure_unique(Extension, "number", number, f"extension {number} already exists", current)
    if store.row_exists(db.session.connection(), "ps_endpoints", number):
        raise v.Conflict({"number": f"Asterisk already has an endpoint {number} that Mini-PBX does not manage"})


def new_extension(data: dict) -> tuple[Extension, str]:
    """A valid extension built from `data` (not added to the session), and its SIP password (generated
    unless a strong one is given); a ValidationError names every bad field. Uniqueness is the caller's."""
    config = current_app.config
    errors = v.Errors()
    _unknown_fields(errors, data)
    number = _number(errors, data.get("number"))
    name = _name(errors, data.get("name"), number)
    email = v.email(errors, "email", data.get("email"))
    if data.get("password") is None:
        password = v.generate_password()
    else:
        password = v.sip_password(errors, "password", data["password"], avoid=(number or "", name or ""))
    context = v.context(errors, "context", data.get("context", config["PBX_DEFAULT_CONTEXT"]))
    codecs = v.codecs(errors, "codecs", data.get("codecs", config["PBX_DEFAULT_CODECS"]))
    voicemail = v.boolean(errors, "voicemail", data.get("voicemail", False))
    max_contacts = v.integer(errors, "max_contacts", data.get("max_contacts", 1), minimum=1, maximum=10)
    is_active = v.boolean(errors, "is_active", data.get("is_active", True))
    errors.raise_if_any()
    extension = Extension(number=number, name=name, email=email, sip_password=password, context=context,
                          codecs=codecs, voicemail=voicemail, max_contacts=max_contacts, is_active=is_active)
    return extension, password


def has_mailbox(extension: Extension) -> bool:
    """Whether Asterisk has a mailbox for it (realtime/mapping.py writes one for exactly these)."""
    return bool(extension.is_active and extension.voicemail)


def _give_pin(extension: Extension) -> str:
    """A new PIN for the extension's mailbox, written into Asterisk's row — its only home (see
    realtime/mapping.voicemail_row) — and returned to be shown once. Runs after the flush that made the row."""
    pin = v.generate_pin()
    settings = RealtimeSettings.from_config(current_app.config)
    if not store.set_voicemail_pin(db.session.connection(), settings, extension.number, pin):
        raise v.Conflict({"voicemail": "the mailbox changed at the same moment; reload and try again"})
    audit.record("update", "extension", extension.number, {"voicemail PIN": "changed"})
    return pin


def create_extension(data: dict) -> tuple[Extension, str, str | None]:
    """Returns the extension, its SIP password (generated unless a strong one is given) and its voicemail
    PIN when it has a mailbox."""
    extension, password = new_extension(data)
    _check_number_free(extension.number)
    db.session.add(extension)
    pin = commit("number", f"extension {extension.number} already exists",
                 answer=lambda: _give_pin(extension) if has_mailbox(extension) else None)
    return extension, password, pin


def numbers_taken(numbers: list[str]) -> dict[str, str]:
    """Which of these numbers cannot be used, and why: an extension has it, or Asterisk has an endpoint by
    that name that Mini-PBX does not manage. Two queries, whatever the count (a CSV import)."""
    taken = {}
    for start in range(0, len(numbers), 1000):
        chunk = numbers[start:start + 1000]
        for number in db.session.scalars(sa.select(Extension.number).where(Extension.number.in_(chunk))):
            taken[number] = f"extension {number} already exists"
        for number in store.existing_ids(db.session.connection(), "ps_endpoints", chunk):
            taken.setdefault(number, f"Asterisk already has an endpoint {number} that Mini-PBX does not manage")
    return taken


def update_extension(number: str, data: dict) -> tuple[Extension, str | None]:
    """Returns the extension, and a voicemail PIN when this change gave it a mailbox (voicemail turned on,
    or the extension activated with it on): a mailbox Asterisk makes anew never keeps an old PIN."""
    extension = lock_extension(number)
    had_mailbox = has_mailbox(extension)
    errors = v.Errors()
    _unknown_fields(errors, data)
    errors.check("password", "password" not in data, "use the password endpoint to change it")
    changes = {}
    new_number = _number(errors, data["number"]) if "number" in data else extension.number
    if "number" in data:
        changes["number"] = new_number
    if "name" in data or "number" in data:
        changes["name"] = _name(errors, data.get("name", extension.name), new_number)
    if "email" in data:
        changes["email"] = v.email(errors, "email", data["email"])
    if "context" in data:
        changes["context"] = v.context(errors, "context", data["context"])
    if "codecs" in data:
        changes["codecs"] = v.codecs(errors, "codecs", data["codecs"])
    if "voicemail" in data:
        changes["voicemail"] = v.boolean(errors, "voicemail", data["voicemail"])
    if "max_contacts" in data:
        changes["max_contacts"] = v.integer(errors, "max_contacts", data["max_contacts"], minimum=1, maximum=10)
    if "is_active" in data:
        changes["is_active"] = v.boolean(errors, "is_active", data["is_active"])
    errors.raise_if_any()
    if new_number != extension.number:
        _check_number_free(new_number, extension)
    for field, value in changes.items():
        setattr(extension, field, value)
    new_mailbox = has_mailbox(extension) and not had_mailbox
    pin = commit("number", f"extension {new_number} already exists",
                 answer=lambda: _give_pin(extension) if new_mailbox else None)
    return extension, pin


def reset_voicemail_pin(number: str) -> tuple[Extension, str]:
    """A new generated PIN for the extension's mailbox, returned once."""
    extension = get_extension(number, lock=True)
    if not has_mailbox(extension):
        raise v.Conflict({"voicemail": "is off (or the extension inactive): this extension has no mailbox"})
    # A mailbox row someone deleted by hand is made again first, so the PIN has somewhere to go.
    settings = RealtimeSettings.from_config(current_app.config)
    store.reconcile_owners(db.session.connection(), settings, {store.Owner("extension", extension.number)})
    pin = commit(answer=lambda: _give_pin(extension))
    return extension, pin


def set_password(number: str, password: str | None = None) -> tuple[Extension, str]:
    extension = get_extension(number, lock=True)
    if password is None:
        password = v.generate_password()
    else:
        errors = v.Errors()
        password = v.sip_password(errors, "password", password, avoid=(extension.number, extension.name))
        errors.raise_if_any()
    extension.sip_password = password
    commit()
    return extension, password


def delete_extension(number: str) -> None:
    extension = lock_extension(number)
    dids = db.session.scalars(
        sa.select(Did.number).where(Did.destination_type == "extension", Did.destination_id == extension.id)
    ).all()
    if dids:
        raise v.Conflict({"number": f"DIDs route to this extension: {', '.join(dids)}"})
    db.session.delete(extension)
    commit()


def to_dict(extension: Extension) -> dict:
    return {
        "number": extension.number,
        "name": extension.name,
        "email": extension.email,
        "context": extension.context,
        "codecs": extension.codecs.split(","),
        "voicemail": extension.voicemail,
        "max_contacts": extension.max_contacts,
        "is_active": extension.is_active,
    }


# --- a phone's setup card ------------------------------------------------------------------------------

TRANSPORT_WORDS = {"transport-udp": "UDP", "transport-tcp": "TCP", "transport-wss": "WSS (WebRTC)"}


def phone_setup(extension: Extension, browser_host: str) -> dict:
    """What a phone needs to register as this extension. The server is the public host of the settings; with
    none, the address Asterisk binds (asterisk-config renders the same); bound to every address, the host
    the admin's browser reached this app by, which on a one-box PBX is the same machine."""
    config = current_app.config
    bind = config["PBX_SIP_BIND"]
    server = (config.get("PBX_SIP_PUBLIC_HOST") or config.get("PBX_EXTERNAL_ADDRESS")
              or (bind if bind not in ("0.0.0.0", "::") else urlsplit(f"//{browser_host}").hostname))
    return {
        "server": server,
        "port": config["PBX_SIP_PORT"],
        "transport": TRANSPORT_WORDS.get(config["PBX_SIP_TRANSPORT"], config["PBX_SIP_TRANSPORT"]),
        "domain": server,
        "username": extension.number,
        "auth_username": extension.number,
        "display_name": extension.name,
        "voicemail": extension.voicemail,
    }


def phone_setup_text(setup: dict, password: str | None) -> str:
    """The card as plain text, for the mail."""
    lines = [
        f"Phone setup for extension {setup['username']} — {setup['display_name']}",
        "",
        f"SIP server (registrar and proxy): {setup['server']}",
        f"Port: {setup['port']}",
        f"Transport: {setup['transport']}",
        f"Domain / realm: {setup['domain']}",
        f"User name: {setup['username']}",
        f"Authentication user: {setup['auth_username']}",
        f"Password: {password}" if password else "Password: ask your administrator for a new one",
        f"Display name: {setup['display_name']}",
    ]
    return "\n".join(lines) + "\n"
