"""DIDs (inbound numbers and where they ring) and SIP trunks."""

import re

import sqlalchemy as sa
from flask import current_app

from .. import validation as v
from ..ext import db
from ..models import DESTINATION_TYPES, Did, Extension, ExtensionGroup, Trunk
from ..realtime import store
from ..realtime.mapping import match_list
from ..service_base import commit_or_conflict, ensure_unique, get_or_not_found

DID_FIELDS = {"number", "destination_type", "destination_id", "description", "is_active"}
TRUNK_FIELDS = {"name", "host", "port", "username", "password", "transport", "register", "match", "context", "codecs", "is_active"}
# The transports asterisk/pjsip.conf defines for trunks.
TRANSPORTS = ("transport-udp", "transport-tcp")
# Trunk names become PJSIP object ids: they must never look like an extension number.
TRUNK_NAME = re.compile(r"[a-z][a-z0-9_-]{1,39}")
SIP_USER = re.compile(r"[A-Za-z0-9._+-]{1,40}")


def _unknown(errors: v.Errors, data: dict, fields: set, what: str) -> None:
    for field in sorted(set(data) - fields):
        errors.check(field, False, f"is not a field of a {what}")


def _for_create(data: dict, defaults: dict) -> dict:
    return {**defaults, **data}


# --- DIDs ---------------------------------------------------------------------------------------------


def _destination(errors: v.Errors, destination_type, destination_id):
    kind = v.choice(errors, "destination_type", destination_type, DESTINATION_TYPES)
    dest_id = v.integer(errors, "destination_id", destination_id, minimum=1, maximum=2**31 - 1)
    if kind is None or dest_id is None:
        return
    model = Extension if kind == "extension" else ExtensionGroup
    errors.check("destination_id", db.session.get(model, dest_id) is not None, f"{kind} {dest_id} does not exist")


def _validate_did(data: dict, did: Did | None) -> dict:
    errors = v.Errors()
    _unknown(errors, data, DID_FIELDS, "DID")
    clean = {}
    if "number" in data:
        clean["number"] = v.digits(errors, "number", data["number"], min_length=2, max_length=32)
    if "destination_type" in data or "destination_id" in data:
        clean["destination_type"] = data.get("destination_type", did.destination_type if did else None)
        clean["destination_id"] = data.get("destination_id", did.destination_id if did else None)
        _destination(errors, clean["destination_type"], clean["destination_id"])
        if "destination_id" not in errors:
            clean["destination_id"] = int(clean["destination_id"])
    if "description" in data:
        clean["description"] = v.text(errors, "description", data["description"], required=False, max_length=200) or ""
    if "is_active" in data:
        clean["is_active"] = v.boolean(errors, "is_active", data["is_active"])
    errors.raise_if_any()
    return clean


def list_dids() -> list[Did]:
    return list(db.session.scalars(sa.select(Did).order_by(Did.number)))


def get_did(did_id: int) -> Did:
    return get_or_not_found(Did, f"DID {did_id}", id=did_id)


def create_did(data: dict) -> Did:
    data = _for_create(data, {"number": None, "destination_type": None, "destination_id": None, "is_active": True})
    clean = _validate_did(data, None)
    ensure_unique(Did, "number", clean["number"], f"DID {clean['number']} already exists")
    did = Did(**clean)
    db.session.add(did)
    commit_or_conflict("number", f"DID {clean['number']} already exists")
    return did


def update_did(did_id: int, data: dict) -> Did:
    did = get_did(did_id)
    clean = _validate_did(data, did)
    if "number" in clean:
        ensure_unique(Did, "number", clean["number"], f"DID {clean['number']} already exists", did)
    for field, value in clean.items():
        setattr(did, field, value)
    commit_or_conflict("number", "DID already exists")
    return did


def delete_did(did_id: int) -> None:
    db.session.delete(get_did(did_id))
    db.session.commit()


def did_to_dict(did: Did) -> dict:
    return {
        "id": did.id,
        "number": did.number,
        "destination_type": did.destination_type,
        "destination_id": did.destination_id,
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
                        "must be 2-40 lower-case letters, digits, '-' or '_', starting with a letter"):
            clean["name"] = name
    if "host" in data:
        clean["host"] = v.host(errors, "host", data["host"])
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
        errors.check("match", all(len(m) <= 80 for m in clean["match"].split(",")), "entries must be at most 80 characters")
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


def list_trunks() -> list[Trunk]:
    return list(db.session.scalars(sa.select(Trunk).order_by(Trunk.name)))


def get_trunk(trunk_id: int) -> Trunk:
    return get_or_not_found(Trunk, f"trunk {trunk_id}", id=trunk_id)


def _check_trunk_name_free(name: str, current: Trunk | None = None) -> None:
    ensure_unique(Trunk, "name", name, f"trunk {name} already exists", current)
    if (current is None or current.name != name) and store.row_exists(db.session.connection(), "ps_endpoints", name):
        raise v.Conflict({"name": f"Asterisk already has an endpoint {name} that Mini-PBX does not manage"})


def create_trunk(data: dict) -> Trunk:
    defaults = {
        "name": None, "host": None, "port": 5060, "transport": "transport-udp", "register": False,
        "match": "", "context": "from-external", "codecs": current_app.config["PBX_DEFAULT_CODECS"], "is_active": True,
    }
    clean = _validate_trunk(_for_create(data, defaults), None)
    _check_trunk_name_free(clean["name"])
    trunk = Trunk(**clean)
    db.session.add(trunk)
    commit_or_conflict("name", f"trunk {clean['name']} already exists")
    return trunk


def update_trunk(trunk_id: int, data: dict) -> Trunk:
    trunk = get_trunk(trunk_id)
    clean = _validate_trunk(data, trunk)
    if "name" in clean:
        _check_trunk_name_free(clean["name"], trunk)
    for field, value in clean.items():
        setattr(trunk, field, value)
    commit_or_conflict("name", "trunk name already exists")
    return trunk


def delete_trunk(trunk_id: int) -> None:
    db.session.delete(get_trunk(trunk_id))
    db.session.commit()


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
