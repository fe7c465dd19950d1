"""What every JSON API blueprint shares: bearer-token auth, the JSON body, and error bodies.

Each area's ``api.py`` holds its own routes over its ``service.py``. The API is exempt from CSRF because it
authenticates with a bearer token, never with the browser's cookie.
"""

from flask import Blueprint, abort, g, jsonify, request

from .auth.service import user_for_token
from .ext import csrf, db
from .validation import ServiceError, ValidationError

READ_ROLES = ("admin", "manager")
WRITE_ROLES = ("admin",)


def _json_error(status: int, message: str, **headers):
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers)
    return response


def api_blueprint(name: str, url_prefix: str, read_roles=READ_ROLES, write_roles=WRITE_ROLES) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    csrf.exempt(bp)

    @bp.before_request
    def authenticate():
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        user = user_for_token(token) if scheme.lower() == "bearer" and token else None
        if user is None:
            abort(_json_error(401, "a valid bearer token is required", **{"WWW-Authenticate": 'Bearer realm="mini-pbx"'}))
        g.api_user = user
        allowed = read_roles if request.method in ("GET", "HEAD") else write_roles
        if user.role not in allowed:
            abort(_json_error(403, f"the {user.role} role may not do this"))

    bp.register_error_handler(ServiceError, _service_error)
    return bp


def _service_error(error: ServiceError):
    db.session.rollback()
    return jsonify(errors=error.errors), error.status


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError({"_": "the request body must be a JSON object"})
    return data


def init_app(app) -> None:
    """JSON bodies for the API's HTTP errors (an unknown route, a wrong method) instead of HTML pages."""

    def http_error(error):
        if request.path.startswith("/api/"):
            return _json_error(error.code, error.description)
        return error

    app.register_error_handler(404, http_error)
    app.register_error_handler(405, http_error)
