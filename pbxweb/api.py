"""What every JSON API blueprint shares: bearer-token auth and the JSON body (error bodies: pbxweb/errors).

Each area's ``api.py`` holds its own routes over its ``service.py``. The API is exempt from CSRF because it
authenticates with a bearer token, never with the browser's cookie.
"""

from flask import Blueprint, abort, g, request

from .auth.service import user_for_token
from .errors import error_response, parse_json
from .ext import csrf
from .validation import ValidationError

READ_ROLES = ("admin", "manager")
WRITE_ROLES = ("admin",)


def api_blueprint(name: str, url_prefix: str, read_roles=READ_ROLES, write_roles=WRITE_ROLES) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    csrf.exempt(bp)

    @bp.before_request
    def authenticate():
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        user = user_for_token(token) if scheme.lower() == "bearer" and token else None
        if user is None:
            abort(error_response(401, {"_": "a valid bearer token is required"}, **{"WWW-Authenticate": 'Bearer realm="mini-pbx"'}))
        g.api_user = user
        allowed = read_roles if request.method in ("GET", "HEAD") else write_roles
        if user.role not in allowed:
            abort(error_response(403, {"_": f"the {user.role} role may not do this"}))

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
