"""DIDs (inbound numbers and where they ring) and SIP trunks."""

import re

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ami.outbox import pending_note
from ..asterisk_config import pjsip_sections
from ..ext import db
from ..models import DESTINATION_TYPES, Did, Extension, ExtensionGroup, Trunk
from ..realtime import store
from ..live import store as live_store
from ..realtime.mapping import match_list, registration_client_uri
from ..realtime.schema import TABLES
from ..service_base import commit, ensure_unique, get_or_not_found

DID_FIELDS = {"number", "destination_type", "destination", "description", "is_active"}
TRUNK_FIELDS = {"name", "host", "port", "username", "password", "transport", "register", "match", "context", "codecs", "is_active"}
# The transports asterisk/pjsip.conf defines for trunks.
TRANSPORTS = ("transport-udp", "transport-tcp")
# Trunk names become PJSIP object ids: they must never look like an extension number.
TRUNK_NAME = re.compile(r"[a-z][a-z0-9_-]{1,39}")
SIP_USER = re.compile(r"[A-Za-z0-9._+-]{1,40}")
# The longest host whose URIs (`sip:<user>@[<host>]:<port>`) still fit Asterisk's 255-character columns.
HOST_MAX = TABLES["ps_registrations"].c.client_uri.type.length - len("sip:@[]:65535") - 40


def _unknown(errors: v.Errors, data: dict, fields: set, what: str) -> None:
    for field in sorted(set(data) - fields):
        errors.check(field, False, f"is not a field of a {what}")


def _for_create(data: dict, defaults: dict) -> dict:
    return {**defaults, **data}


# --- DIDs ---------------------------------------------------------------------------------------------


def _lock_destination(errors: v.Errors, kind, destination):
    """The extension (by number) or group (by id) a DID rings, share-locked so it cannot be deleted while
    the DID is saved (its delete refuses while a DID routes to it). Returns its id."""
    if kind == "extension":
        if not errors.check("destination", isinstance(destination, str) and destination.isascii() and destination.isdigit(),
                            "must be the extension's number"):
            return None
        model, by, shown = Extension, Extension.number == destination, f"extension {destination}"
    else:
        group_id = v.integer(errors, "destination", destination, minimum=1, maximum=2**31 - 1)
        if group_id is None:
            return None
        model, by, shown = ExtensionGroup, ExtensionGroup.id == group_id, f"group {group_id}"
    found = db.session.scalar(sa.select(model.id).where(by).with_for_update(read=True))
    errors.check("destination", found is not None, f"{shown} does not exist")
    return found


def _validate_did(data: dict, did: Did | None) -> dict:
    errors = v.Errors()
    _unknown(errors, data, DID_FIELDS, "DID")
    clean = {}
    if "number" in data:
        clean["number"] = v.digits(errors, "number", data["number"], min_length=2, max_length=32)
    if "destination_type" in data or "destination" in data:
        kind = v.choice(errors, "destination_type", data.get("destination_type", did.destination_type if did else None), DESTINATION_TYPES)
        errors.check("destination", "destination" in data, "is required with destination_type")
        if kind is not None and "destination" in data:
            clean["destination_type"] = kind
            clean["destination_id"] = _lock_destination(errors, kind, data["destination"])
    if "description" in data:
        clean["description"] = v.text(errors, "description", data["description"], required=False, max_length=200) or ""
    if "is_active" in data:
        clean["is_active"] = v.boolean(errors, "is_active", data["is_active"])
    errors.raise_if_any()
    return clean


def list_dids() -> list[Did]:
    return list(db.session.scalars(sa.select(Did).order_by(Did.number)))


def get_did(did_id: int, *, lock: bool = False) -> Did:
    return get_or_not_found(Did, f"DID {did_id}", id=did_id, lock=lock)


def create_did(data: dict) -> dict:
    data = _for_create(data, {"number": None, "destination_type": None, "destination": None, "is_active": True})
    clean = _validate_did(data, None)
    ensure_unique(Did, "number", clean["number"], f"DID {clean['number']} already exists")
    did = Did(**clean)
    db.session.add(did)
    return commit("number", f"DID {clean['number']} already exists", answer=lambda: did_to_dict(did))


def update_did(did_id: int, data: dict) -> dict:
    did = get_did(did_id)
    # Extensions and groups are locked before the DID, as every writer orders them.
    clean = _validate_did(data, did)
    did = get_did(did_id, lock=True)
    if "number" in clean:
        ensure_unique(Did, "number", clean["number"], f"DID {clean['number']} already exists", did)
    for field, value in clean.items():
        setattr(did, field, value)
    return commit("number", "DID already exists", answer=lambda: did_to_dict(did))


def delete_did(did_id: int) -> None:
    db.session.delete(get_did(did_id, lock=True))
    commit()


def _destination_shown(did: Did):
    """What the API names a destination by: an extension's number, a group's id."""
    if did.destination_type == "extension":
        return db.session.scalar(sa.select(Extension.number).where(Extension.id == did.destination_id))
    return did.destination_id


def did_to_dict(did: Did) -> dict:
    return {
        "id": did.id,
        "number": did.number,
        "destination_type": did.destination_type,
        "destination": _destination_shown(did),
        "description": did.description,
        "is_active": did.is_active,
    }


# --- trunks -------------------------------------------------------------------------------------------


def _validate_trunk(data: dict, trunk: Trunk | None) -> dict:
    errors = v.Errors()
    _unknown(errors, data, TRUNK_FIELDS, "trunk")
    clean = {}
    if "name" in data:
        name = data["name"]
        if errors.check("name", isinstance(name, str) and TRUNK_NAME.fullmatch(name) is not None,
                        "must be 2-40 lower-case letters, digits, '-' or '_', starting with a letter") and \
                errors.check("name", name not in pjsip_sections(), f"{name!r} is a section of pjsip.conf: choose another name"):
            clean["name"] = name
    if "host" in data:
        clean["host"] = v.host(errors, "host", data["host"], max_length=HOST_MAX)
    if "port" in data:
        clean["port"] = v.integer(errors, "port", data["port"], minimum=1, maximum=65535)
    if "username" in data:
        username = data["username"] or None
        if username is not None:
            errors.check("username", isinstance(username, str) and SIP_USER.fullmatch(username) is not None,
                         "must be 1-40 letters, digits or . _ + -")
        clean["username"] = username
    if "password" in data:
        password = data["password"] or None
        if password is not None:
            password = v.text(errors, "password", password, max_length=80)
        clean["password"] = password
    if "transport" in data:
        clean["transport"] = v.choice(errors, "transport", data["transport"], TRANSPORTS)
    if "register" in data:
        clean["register"] = v.boolean(errors, "register", data["register"])
    if "match" in data:
        clean["match"] = v.ip_networks(errors, "match", data["match"] or "")
    if "context" in data:
        clean["context"] = v.context(errors, "context", data["context"])
    if "codecs" in data:
        clean["codecs"] = v.codecs(errors, "codecs", data["codecs"])
    if "is_active" in data:
        clean["is_active"] = v.boolean(errors, "is_active", data["is_active"])
    merged = {
        f: clean.get(f, getattr(trunk, f) if trunk else None) for f in ("username", "password", "register")
    }
    if merged["register"]:
        errors.check("username", bool(merged["username"]), "is required to register")
        errors.check("password", bool(merged["password"]), "is required to register")
    if merged["username"] and not merged["password"]:
        errors.check("password", False, "is required with a username")
    errors.raise_if_any()
    return clean


def registration_states(config, trunks: list[Trunk]) -> tuple[dict[str, dict], bool]:
    """Each registering trunk's outbound registration as Asterisk last reported it, by trunk name:
    {"status": Asterisk's word (`Registered`, `Rejected`, `Unregistered`…), "cause": its reason or None,
    "at": when, or None}. The outcome of each attempt is kept by the AMI listener (its `Registry` event);
    a trunk with none seen yet is asked for now (PJSIPShowRegistrationsOutbound: the state without a time).
    The flag is False when that was needed and Asterisk could not be asked."""
    registering = {registration_client_uri(t): t.name for t in trunks if t.register and t.username and t.is_active}
    seen = live_store.registrations(db.session, list(registering))
    states = {name: seen[uri] for uri, name in registering.items() if uri in seen}
    if len(states) == len(registering):
        return states, True
    snapshot = _outbound_registrations(config)
    if snapshot is None:
        return states, False
    for name, status in snapshot.items():
        if name in registering.values() and name not in states:
            states[name] = {"status": status, "cause": None, "at": None}
    return states, True


def _outbound_registrations(config) -> dict[str, str] | None:
    """Asterisk's registrations right now, Status by object name, or None when it cannot be asked."""
    from ..ami import actions
    from ..ami.client import AmiError

    if not actions.configured(config):
        return None
    try:
        with actions.connect(config, timeout=2.0) as ami:
            answer = ami.action("PJSIPShowRegistrationsOutbound")
    except AmiError:
        return None
    if answer.response != "Success":
        return None
    return {e.get("ObjectName"): e.get("Status") or "unknown" for e in answer.events if e.event == "OutboundRegistrationDetail"}


def list_trunks() -> list[Trunk]:
    return list(db.session.scalars(sa.select(Trunk).order_by(Trunk.name)))


def get_trunk(trunk_id: int, *, lock: bool = False) -> Trunk:
    return get_or_not_found(Trunk, f"trunk {trunk_id}", id=trunk_id, lock=lock)


def _check_trunk_name_free(name: str, current: Trunk | None = None) -> None:
    ensure_unique(Trunk, "name", name, f"trunk {name} already exists", current)
    if (current is None or current.name != name) and store.row_exists(db.session.connection(), "ps_endpoints", name):
        raise v.Conflict({"name": f"Asterisk already has an endpoint {name} that Mini-PBX does not manage"})


def create_trunk(data: dict) -> dict:
    defaults = {
        "name": None, "host": None, "port": 5060, "transport": "transport-udp", "register": False,
        "match": "", "context": "from-external", "codecs": current_app.config["PBX_DEFAULT_CODECS"], "is_active": True,
    }
    clean = _validate_trunk(_for_create(data, defaults), None)
    _check_trunk_name_free(clean["name"])
    trunk = Trunk(**clean)
    db.session.add(trunk)
    return commit("name", f"trunk {clean['name']} already exists", answer=lambda: trunk_answer(trunk))


def update_trunk(trunk_id: int, data: dict) -> dict:
    trunk = get_trunk(trunk_id, lock=True)
    clean = _validate_trunk(data, trunk)
    if "name" in clean:
        _check_trunk_name_free(clean["name"], trunk)
    for field, value in clean.items():
        setattr(trunk, field, value)
    return commit("name", "trunk name already exists", answer=lambda: trunk_answer(trunk))


def delete_trunk(trunk_id: int) -> None:
    db.session.delete(get_trunk(trunk_id, lock=True))
    commit()


def trunk_answer(trunk: Trunk) -> dict:
    """A saved trunk, and what Asterisk still has to apply when AMI is down (its registration)."""
    note = pending_note(db.session)
    return {**trunk_to_dict(trunk), "asterisk": note} if note else trunk_to_dict(trunk)


def trunk_to_dict(trunk: Trunk) -> dict:
    return {
        "id": trunk.id,
        "name": trunk.name,
        "host": trunk.host,
        "port": trunk.port,
        "username": trunk.username,
        "transport": trunk.transport,
        "register": trunk.register,
        "match": match_list(trunk.match),
        "context": trunk.context,
        "codecs": trunk.codecs.split(","),
        "is_active": trunk.is_active,
    }
