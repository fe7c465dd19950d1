"""Who may open what: one rule table for the pages, their htmx fragments, the JSON API and the live socket.

Every request is checked here, before any view runs: who is asking (the session for pages, a bearer token
for `/api/`), then the rule of the route — by endpoint, else by blueprint, else **admin only**: a new route
that nobody gave a rule to is closed, not open. Reading means GET/HEAD; everything else is writing.
What a role sees *within* a page it may open (an agent: its own groups, its own calls) is the services'
filtering, on top of this.

|                                  | admin       | manager | qa   | agent              |
|----------------------------------|-------------|---------|------|--------------------|
| extensions, trunks, DIDs         | edit        | view    | –    | –                  |
| users, audit log                 | edit / view | –       | –    | –                  |
| groups and their members         | edit        | edit    | view | view own           |
| waiting calls, presence          | all groups  | all     | all  | own groups         |
| pick up a waiting call           | yes         | yes     | yes  | own groups and ext |
| redirect a waiting call          | yes         | yes     | yes  | no                 |
| call log                         | all         | all     | all  | own calls          |
"""

from dataclasses import dataclass

from flask import g, redirect, request, session, url_for

from ..models import ROLES

ALL = frozenset(ROLES)
STAFF = frozenset({"admin", "manager", "qa"})


@dataclass(frozen=True)
class Rule:
    read: frozenset
    write: frozenset

    def allows(self, role: str, method: str) -> bool:
        return role in (self.read if method in ("GET", "HEAD") else self.write)


ADMIN_ONLY = Rule(read=frozenset({"admin"}), write=frozenset({"admin"}))
CONFIGURATION = Rule(read=frozenset({"admin", "manager"}), write=frozenset({"admin"}))
GROUPS = Rule(read=ALL, write=frozenset({"admin", "manager"}))
EVERY_ROLE = Rule(read=ALL, write=ALL)

# Endpoint ("blueprint.view") or blueprint name → rule. The endpoint's own rule wins.
RULES: dict[str, Rule] = {
    "dashboard": EVERY_ROLE,
    # Sending a caller elsewhere is for staff; an agent picks up callers of its own groups only.
    "dashboard.redirect": Rule(read=ALL, write=STAFF),
    "live": EVERY_ROLE,
    "auth.logout": EVERY_ROLE,
    "extensions": CONFIGURATION,
    "extensions_api": CONFIGURATION,
    "dids": CONFIGURATION,
    "dids_api": CONFIGURATION,
    "trunks": CONFIGURATION,
    "trunks_api": CONFIGURATION,
    "groups": GROUPS,
    "groups_api": GROUPS,
    "users": ADMIN_ONLY,
    "audit": ADMIN_ONLY,
    "live_api": EVERY_ROLE,
    # The call log: everyone reads it, an agent only the calls its own extension took part in (cdr/service).
    "calls": Rule(read=ALL, write=frozenset()),
    "cdr_api": Rule(read=ALL, write=frozenset()),
    # The group report: everyone reads it, an agent only its own groups and itself (cdr/service.group_report).
    "cdr_api.call_stats": Rule(read=ALL, write=frozenset()),
    # An agent may pick up a caller of its own groups on its own phone, never send one elsewhere.
    "live_api.redirect": Rule(read=ALL, write=STAFF),
    "live_api.waiting_call_groups": ADMIN_ONLY,
}
# Open to anyone: signing in, and the stylesheets and scripts of the sign-in page.
PUBLIC = frozenset({"auth.login", "static"})
# Pages a script may also fetch with a bearer token (a nightly export).
TOKEN_PAGES = frozenset({"calls.export_csv"})


def rule_for(endpoint: str) -> Rule:
    if endpoint in RULES:
        return RULES[endpoint]
    return RULES.get(endpoint.split(".", 1)[0], ADMIN_ONLY)


def may(user, endpoint: str, method: str = "GET") -> bool:
    """For templates (the nav shows only what the role may open) and for the check below."""
    return user is not None and (endpoint in PUBLIC or rule_for(endpoint).allows(user.role, method))


def _session_user():
    """The signed-in user of this browser session, while the account is active and the session is not one
    that a password reset or a deactivation ended."""
    from ..ext import db
    from ..models import User

    user_id = session.get("user_id")
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or session.get("version") != user.session_version:
        session.clear()
        return None
    return user


def _token_user():
    from .service import user_for_token

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return user_for_token(token) if scheme.lower() == "bearer" and token else None


def check_request():
    """Before every request: who is asking, and may they."""
    from ..errors import error_response, is_api_request

    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC:
        return None  # a 404 or 405 answers by itself
    if is_api_request() or (endpoint in TOKEN_PAGES and request.headers.get("Authorization")):
        user = _token_user()
        if user is None:
            return error_response(401, {"_": "a valid bearer token is required"}, **{"WWW-Authenticate": 'Bearer realm="mini-pbx"'})
        g.actor = f"token:{user.username}"
    else:
        user = _session_user()
        if user is None:
            if request.headers.get("HX-Request"):
                # htmx would swap the login page into a table cell: send the whole page there instead.
                return "", 401, {"HX-Redirect": url_for("auth.login")}
            back = request.full_path.rstrip("?") if request.method == "GET" and request.path != "/" else None
            return redirect(url_for("auth.login", next=back))
        g.actor = f"user:{user.username}"
    g.user = user
    if not rule_for(endpoint).allows(user.role, request.method):
        return error_response(403, {"_": f"the {user.role} role may not do this"})
    return None


def init_app(app) -> None:
    app.before_request(check_request)

    @app.context_processor
    def access_helpers():
        return {"may": lambda endpoint, method="GET": may(g.get("user"), endpoint, method), "current_user": g.get("user")}
