"""How every request fails: one JSON shape for the API, input the database cannot hold refused up front, and
a 503 (never a 500) while the database is unreachable.

Every API error body is ``{"errors": {field: message}}`` — ``"_"`` when no single field is at fault — for
400/404/409 from the services and for 401/403/404/405/413/503 alike, so a client reads one shape.
"""

import json
import logging
import re

import sqlalchemy as sa
from flask import abort, current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from .ext import db
from .validation import ServiceError, ValidationError

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 20


# PostgreSQL cannot store NUL in text, and a lone surrogate (JSON "\ud800") cannot be encoded as UTF-8: either
# would fail deep in the driver, so both are refused where they enter. One scan in C, even for a large field.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value: str) -> bool:
    return UNSTORABLE.search(value) is not None


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, errors: dict, **headers):
    """The API's error body, or for a page a short HTML page with the same message."""
    if is_api_request():
        response = jsonify(errors=errors)
    else:
        messages = [m if f == "_" else f"{f}: {m}" for f, m in errors.items()]
        response = make_response(render_template("error.html", status=status, messages=messages))
    response.status_code = status
    response.headers.update(headers)
    return response


def _walk(value, path: str = "", depth: int = 0):
    """(path, string) for every string in a parsed JSON body, keys included; refuses deep nesting."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError({path or "_": f"is nested more than {MAX_JSON_DEPTH} levels deep"})
    if isinstance(value, str):
        yield path or "_", value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, key
            yield from _walk(item, child, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1)


def parse_json(raw: bytes):
    """A request body as JSON, or a 400 that says why: not JSON, nested too deep, or holding text the
    database cannot store (the field is named)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValidationError({"_": f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"}) from None
    except ValueError:
        raise ValidationError({"_": "the request body is not valid JSON"}) from None
    for path, text in _walk(data):
        if _unstorable(text):
            raise ValidationError({path: "must not contain NUL or unpaired surrogate characters"})
    return data


def _refuse_unstorable_input():
    if _unstorable(request.path):
        abort(404)
    for source in (request.args, request.form):
        for field, values in source.lists():
            if _unstorable(field) or any(_unstorable(v) for v in values):
                raise ValidationError({field if not _unstorable(field) else "_": "must not contain NUL or unpaired surrogate characters"})


def _http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error  # routing's redirects travel as exceptions too
    if error.code == 413:
        limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
        return error_response(413, {"_": f"the upload is larger than {limit} MB: nothing was read"})
    return error_response(error.code, {"_": error.description or error.name})


def _service_error(error: ServiceError):
    db.session.rollback()
    return error_response(error.status, error.errors)


def _database_unavailable(error: sa.exc.SQLAlchemyError):
    """A lost or refused connection: say so and that a retry may work. Anything else is a real bug."""
    db.session.rollback()
    if isinstance(error, sa.exc.OperationalError) or getattr(error, "connection_invalidated", False):
        log.warning("database unavailable: %s", error)
        return error_response(503, {"_": "the database is not reachable right now; nothing was saved, try again"},
                              **{"Retry-After": "5"})
    raise error


def init_app(app) -> None:
    app.before_request(_refuse_unstorable_input)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(sa.exc.DBAPIError, _database_unavailable)
