"""What every JSON API blueprint shares: no CSRF (it takes bearer tokens, never the cookie) and the JSON
body. Each area's ``api.py`` holds its own routes over its ``service.py``; who may call what is
auth/access.py's, error bodies are errors.py's.
"""

from flask import Blueprint, request

from .errors import parse_json
from .ext import csrf
from .validation import ValidationError

def api_blueprint(name: str, url_prefix: str) -> Blueprint:
    """A JSON API blueprint: bearer tokens only (auth/access.py checks them and the role rules), so no CSRF."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    csrf.exempt(bp)
    return bp


def json_body(allowed: set[str] | None = None, *, empty_ok: bool = False) -> dict:
    """The request's JSON object. `allowed`: the only keys it may have (others are named in a 400);
    `empty_ok`: no body at all reads as {}."""
    raw = request.get_data(cache=True)
    # A form body has been parsed (and its bytes consumed) by the time a view runs: it is not "no body".
    if empty_ok and not raw.strip() and not request.form and not request.files:
        return {}
    if request.mimetype != "application/json":
        raise ValidationError({"_": "send a JSON object with Content-Type: application/json"})
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ValidationError({"_": "the request body must be a JSON object"})
    if allowed is not None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationError({field: "is not a field here" for field in unknown})
    return data
