"""Who may open what: one rule table for the pages, their htmx fragments, the JSON API and the live socket.

Every request is checked here, before any view runs: who is asking (the session for pages, a bearer token
for `/api/`), then the rule of the route — by endpoint, else by blueprint, else **admin only**: a new route
that nobody gave a rule to is closed, not open. Reading means GET/HEAD; everything else is writing.
Routes whose rule says `own_groups` hold an agent to the groups its own extension belongs to, here too: a
route that names a group (`<group_id>`) answers 404 for any other, as if it did not exist, and its lists
are filtered by `visible_groups()` — the pages, their fragments and the API alike. What else a role sees
*within* a page it may open (an agent: its own calls) is the services' filtering, on top of this.

|                                  | admin       | manager | qa   | agent              |
|----------------------------------|-------------|---------|------|--------------------|
| extensions, trunks, DIDs         | edit        | view    | –    | –                  |
| users, audit log                 | edit / view | –       | –    | –                  |
| groups and their members         | edit        | edit    | view | view own           |
| waiting calls, presence          | all groups  | all     | all  | own groups         |
| pick up a waiting call           | yes         | yes     | yes  | own groups and ext |
| redirect a waiting call          | yes         | yes     | yes  | no                 |
| call log                         | all         | all     | all  | own calls          |
| voicemail messages               | every box   | own     | own  | own                |
| pause in groups                  | anyone      | anyone  | self | self               |
| pause reasons                    | edit        | view    | view | view               |
| missed callers: call back, done  | all groups  | all     | all  | own groups         |
"""

from dataclasses import dataclass

from flask import g, redirect, request, session, url_for

from ..models import ROLE_NAMES, ROLES

ALL = frozenset(ROLES)
STAFF = frozenset({"admin", "manager", "qa"})


@dataclass(frozen=True)
class Rule:
    read: frozenset
    write: frozenset
    # Each user only within the groups it sees (live.store.visible_group_ids: an agent, its own).
    own_groups: bool = False

    def allows(self, role: str, method: str) -> bool:
        return role in (self.read if method in ("GET", "HEAD") else self.write)


ADMIN_ONLY = Rule(read=frozenset({"admin"}), write=frozenset({"admin"}))
CONFIGURATION = Rule(read=frozenset({"admin", "manager"}), write=frozenset({"admin"}))
GROUP_EDITORS = frozenset({"admin", "manager"})
GROUPS = Rule(read=ALL, write=GROUP_EDITORS, own_groups=True)
EVERY_ROLE = Rule(read=ALL, write=ALL)

# Endpoint ("blueprint.view") or blueprint name → rule. The endpoint's own rule wins.
RULES: dict[str, Rule] = {
    "dashboard": EVERY_ROLE,
    # Sending a caller elsewhere is for staff; an agent picks up callers of its own groups only.
    "dashboard.redirect": Rule(read=ALL, write=STAFF),
    "live": EVERY_ROLE,
    "auth.logout": EVERY_ROLE,
    "extensions": CONFIGURATION,
    # The SIP passwords an import generated (a POST: it deletes them as it hands them out).
    "extensions.import_credentials": ADMIN_ONLY,
    "extensions_api": CONFIGURATION,
    "dids": CONFIGURATION,
    "dids_api": CONFIGURATION,
    "trunks": CONFIGURATION,
    "trunks_api": CONFIGURATION,
    "groups": GROUPS,
    "groups_api": GROUPS,
    # The add-member search lists every extension: a tool for those who edit members, like the extensions page.
    "groups.candidates": Rule(read=GROUP_EDITORS, write=GROUP_EDITORS),
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
    # Everyone opens a mailbox: their own, an admin any (voicemail/service.py decides which).
    "voicemail": EVERY_ROLE,
    # Everyone reads the reasons and pauses (themselves; admins and managers anyone: pauses/service.py).
    "pauses_api": Rule(read=ALL, write=frozenset({"admin"})),
    "pauses_api.pause": EVERY_ROLE,
    "pause_reasons": ADMIN_ONLY,
    # Missed callers to call back: everyone, an agent those of its own groups (missed/service.py filters).
    "missed": EVERY_ROLE,
    "missed_api": EVERY_ROLE,
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
    """The signed-in user of this browser, while its session lives on the server (auth/sessions.py)."""
    from . import sessions

    key = session.get("key")
    if key is None:
        return None
    user = sessions.user_of(key)
    if user is None:
        session.clear()
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
    rule = rule_for(endpoint)
    if not rule.allows(user.role, request.method):
        return error_response(403, {"_": f"the {user.role} role may not do this"})
    group_id = (request.view_args or {}).get("group_id")
    if rule.own_groups and group_id is not None and not sees_group(group_id):
        return error_response(404, {"_": f"group {group_id} not found"})
    return None


def visible_groups() -> set[int] | None:
    """The ids of the groups this request's user sees; None: every group."""
    from ..ext import db
    from ..live.store import visible_group_ids

    return visible_group_ids(db.session, g.user)


def sees_group(group_id: int) -> bool:
    visible = visible_groups()
    return visible is None or group_id in visible


def init_app(app) -> None:
    app.before_request(check_request)

    @app.context_processor
    def access_helpers():
        return {"may": lambda endpoint, method="GET": may(g.get("user"), endpoint, method), "current_user": g.get("user"),
                "role_names": ROLE_NAMES}
