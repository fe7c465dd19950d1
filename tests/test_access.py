"""The role matrix, route by route: every route of the app's URL map (pages, htmx fragments and the JSON API)
is asked by every role and by a stranger. The expectation of each route is written here, apart from the
app's own rule table: a new route that nobody thought about fails this test until it is given a place."""

import re

import pytest

from pbxweb.auth.service import create_token, create_user

A, M, Q, G = "admin", "manager", "qa", "agent"
EVERY = frozenset({A, M, Q, G})
CONFIGURATION = (frozenset({A, M}), frozenset({A}))  # (may read, may write)
ADMIN_ONLY = (frozenset({A}), frozenset({A}))
GROUPS = (EVERY, frozenset({A, M}))
EVERYONE = (EVERY, EVERY)

EXPECTED = {
    **dict.fromkeys(["audit.list_page", "users.create", "users.edit_form", "users.list_page", "users.new_form",
                     "users.reset_password", "users.revoke_token", "users.update"], ADMIN_ONLY),
    **dict.fromkeys(["dashboard.index", "dashboard.pick_up", "auth.logout", "live_api.ami_status",
                     "live_api.extension_status", "live_api.pick_up", "live_api.waiting_calls", "live.socket"], EVERYONE),
    "dashboard.redirect": (EVERY, frozenset({A, M, Q})),
    "live_api.redirect": (EVERY, frozenset({A, M, Q})),
    "live_api.waiting_call_groups": ADMIN_ONLY,
    "extensions.import_credentials": ADMIN_ONLY,
    "live_api.click_to_call": EVERYONE,
    # Everyone reaches a mailbox page; which mailbox is the service's rule (tests/test_voicemail_messages.py).
    **dict.fromkeys(["pauses_api.list_reasons", "pauses_api.create_reason", "pauses_api.delete_reason"], (EVERY, frozenset({A}))),
    "pauses_api.pause": EVERYONE,
    "dashboard.pause": EVERYONE,
    **dict.fromkeys(["pause_reasons.list_page", "pause_reasons.create", "pause_reasons.delete"], ADMIN_ONLY),
    **dict.fromkeys(["voicemail.index", "voicemail.mailbox", "voicemail.audio", "voicemail.delete"], EVERYONE),
    "dashboard.call": EVERYONE,
    **dict.fromkeys(["missed.panel", "missed.call_back", "missed.done", "missed_api.list_missed", "missed_api.call_back",
                     "missed_api.done"], EVERYONE),
    **dict.fromkeys(["calls.list_page", "calls.newer", "calls.legs", "calls.export_csv", "calls.stats_page", "calls.stats_csv",
                     "cdr_api.list_calls", "cdr_api.call_stats"], (EVERY, frozenset())),
    **dict.fromkeys([f"{area}.{view}" for area in ("dids", "trunks") for view in
                     ("create", "delete", "edit_form", "list_page", "new_form", "update")] + ["dids.toggle_active"],
                    CONFIGURATION),
    **dict.fromkeys([f"{api}.{view}" for api, views in {
        "dids_api": ("create_did", "delete_did", "get_did", "list_dids", "update_did"),
        "trunks_api": ("create_trunk", "delete_trunk", "get_trunk", "list_trunks", "update_trunk"),
        "extensions_api": ("create_extension", "delete_extension", "get_extension", "list_extensions",
                           "regenerate_password", "reset_voicemail_pin", "update_extension"),
    }.items() for view in views], CONFIGURATION),
    **dict.fromkeys([f"extensions.{view}" for view in ("create", "delete", "edit_form", "export_csv", "import_csv",
                                                       "import_page", "list_page", "new_form", "new_password", "update",
                                                       "phone_card", "email_phone_card", "options", "import_sample", "new_voicemail_pin")],
                    CONFIGURATION),
    "groups.candidates": (frozenset({A, M}), frozenset({A, M})),  # lists every extension: for member editors
    **dict.fromkeys([f"groups.{view}" for view in ("add_member", "create", "delete", "detail", "edit_form",
                                                   "list_page", "move_member", "new_form", "remove_member",
                                                   "set_penalty", "update")], GROUPS),
    **dict.fromkeys([f"groups_api.{view}" for view in ("create_group", "delete_group", "get_group", "list_groups",
                                                       "replace_members", "update_group")], GROUPS),
}
PUBLIC = {"auth.login", "static"}


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_has_an_expectation(app):
    endpoints = {rule.endpoint for rule, _ in routes(app)}
    assert endpoints - PUBLIC - set(EXPECTED) == set(), "routes with no place in the role matrix"
    assert set(EXPECTED) - endpoints == set(), "expectations for routes that no longer exist"


def signed_in(app, user):
    """A test client with a session of the user, as signing in makes one."""
    from pbxweb.auth import sessions

    browser = app.test_client()
    key = sessions.start(user)
    with browser.session_transaction() as session:
        session["key"] = key
    return browser


@pytest.fixture
def users(app):
    return {role: create_user(f"{role}-matrix", role, "correct horse battery")[0] for role in (A, M, Q, G)}


@pytest.fixture
def identities(app, users):
    """role → (a test client signed in as it, bearer headers), and None → a stranger."""
    people = {role: (signed_in(app, user), {"Authorization": f"Bearer {create_token(user.username)}"})
              for role, user in users.items()}
    people[None] = (app.test_client(), {})
    return people


def url_for_rule(rule) -> str:
    # Arguments that name nothing that exists: a permitted request gets as far as a 404 or a 400.
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "999999" if m.group(1) == "int" else "9999", rule.rule)


def test_every_route_answers_each_role_as_the_matrix_says(app, users, identities):
    wrong = []
    for rule, method in routes(app):
        if rule.endpoint in PUBLIC:
            continue
        readers, writers = EXPECTED[rule.endpoint]
        allowed = readers if method == "GET" else writers
        url = url_for_rule(rule)
        api = url.startswith("/api/")
        for role, (browser, headers) in identities.items():
            if role is not None and not api:
                browser = signed_in(app, users[role])  # a fresh session each time: one route signs out
            extra = dict(headers) if api else {}
            if rule.websocket:  # a handshake, from a page of this site
                extra.update({"Connection": "Upgrade", "Upgrade": "websocket", "Origin": "http://localhost"})
            try:
                response = browser.open(url, method=method, headers=extra, json={} if api and method != "GET" else None)
            except RuntimeError as exc:  # the socket view ran: the test client cannot hand it a real socket
                assert rule.websocket and "Cannot obtain socket" in str(exc)
                status = 101
            else:
                status = response.status_code
                response.close()  # a streamed export left unread
            if role is None:
                ok = status == 401 if api else (status == 302 and "/login" in response.headers["Location"])
            elif role in allowed:
                signed_out = status == 302 and "/login" in response.headers.get("Location", "")
                ok = status not in (401, 403) and (not signed_out or rule.endpoint == "auth.logout")
            else:
                ok = status == 403
            if not ok:
                wrong.append(f"{method} {url} as {role or 'stranger'}: {status}")
    assert wrong == []


def test_a_route_without_a_rule_is_for_admins_only():
    from pbxweb.auth.access import ADMIN_ONLY as app_default, rule_for

    assert rule_for("someday.new_view") == app_default
    assert not rule_for("someday.new_view").allows("manager", "GET")


def test_the_nav_shows_only_what_the_role_may_open(app, identities):
    links = {
        A: {"Dashboard", "Calls", "Voicemail", "Extensions", "Groups", "DIDs", "Trunks", "Users", "Pause reasons", "Audit log"},
        M: {"Dashboard", "Calls", "Voicemail", "Extensions", "Groups", "DIDs", "Trunks"},
        Q: {"Dashboard", "Calls", "Voicemail", "Groups"},
        G: {"Dashboard", "Calls", "Voicemail", "Groups"},
    }
    for role, expected in links.items():
        page = identities[role][0].get("/").get_data(as_text=True)
        nav = page.split('class="nav-links"')[1].split("</ul>")[0]
        shown = set(re.findall(r">([A-Za-z ]+)</a>", nav))
        assert shown == expected, role


def test_a_deactivated_user_is_signed_out_of_every_session(app, db, identities):
    from pbxweb.auth.service import update_user
    from pbxweb.models import User

    agent_browser = identities[G][0]
    assert agent_browser.get("/groups").status_code == 200
    admin = db.session.query(User).filter_by(username="admin-matrix").one()
    agent = db.session.query(User).filter_by(username="agent-matrix").one()
    update_user(agent.id, {"is_active": False}, admin)
    response = agent_browser.get("/groups")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_reset_signs_the_user_out_everywhere(app, db, identities):
    from pbxweb.auth.service import reset_password
    from pbxweb.models import User

    manager_browser = identities[M][0]
    assert manager_browser.get("/extensions").status_code == 200
    reset_password(db.session.query(User).filter_by(username="manager-matrix").one().id)
    assert manager_browser.get("/extensions").status_code == 302


def test_signing_in_starts_a_new_session(client, app):
    create_user("alice", "admin", "correct horse battery")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    client.post("/login", data={"username": "alice", "password": "correct horse battery"})
    with client.session_transaction() as session:
        assert "planted" not in session and session["key"]


def test_sign_in_returns_to_the_page_asked_for_and_never_elsewhere(client, app):
    create_user("alice", "admin", "correct horse battery")
    first = client.get("/extensions?q=10")
    assert first.status_code == 302 and "next=" in first.headers["Location"]
    back = client.post("/login?next=/extensions?q%3D10", data={"username": "alice", "password": "correct horse battery"})
    assert back.headers["Location"] == "/extensions?q=10"
    client.post("/logout")
    away = client.post("/login?next=//evil.example/", data={"username": "alice", "password": "correct horse battery"})
    assert away.headers["Location"] == "/"


# `next` as it arrives in the query string, and where a browser would go with it if it were sent back.
HOSTILE_NEXT = (
    "//evil.example/",      # protocol-relative
    "/%09/evil.example",    # a tab: browsers drop it, leaving //evil.example
    "/%0d%0a/evil.example",  # CR LF: header injection, and //evil.example once dropped
    "/%0a/evil.example",
    "/%5Cevil.example",     # /\evil.example: a backslash is a slash to a browser
    "%5C%5Cevil.example",
    "/%5C%09/evil.example",
    "%09//evil.example",
    "https://evil.example/",
    "https:/evil.example",
    "javascript:alert(1)",
    "evil.example",
)


@pytest.mark.parametrize("next_", HOSTILE_NEXT)
def test_sign_in_never_sends_the_browser_to_another_site(client, app, next_):
    create_user("alice", "admin", "correct horse battery")
    response = client.post(f"/login?next={next_}", data={"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_production_cookies_are_secure_httponly_and_samesite(make_db, tmp_path, monkeypatch):
    from pbxweb import create_app

    monkeypatch.delenv("PBX_SECURE_COOKIES", raising=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "k"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.fixture
def group_viewers(app, two_groups):
    """Every role, the agent on 1001 (a member of Sales only), as a signed-in browser and a bearer token."""
    people = {}
    for role in (A, M, Q, G):
        user, _ = create_user(f"{role}-viewer", role, "correct horse battery", "1001" if role == G else None)
        people[role] = (signed_in(app, user), {"Authorization": f"Bearer {create_token(user.username)}"})
    return people


@pytest.mark.parametrize("role, sees", [(A, {"Sales", "Support"}), (M, {"Sales", "Support"}), (Q, {"Sales", "Support"}),
                                        (G, {"Sales"})])
def test_the_groups_api_lists_only_the_groups_the_groups_page_shows(app, group_viewers, role, sees):
    browser, token = group_viewers[role]
    listed = {group["name"] for group in browser.get("/api/groups", headers=token).get_json()["groups"]}
    page = browser.get("/groups").get_data(as_text=True)
    assert listed == sees and {name for name in ("Sales", "Support") if f">{name}<" in page} == sees


@pytest.mark.parametrize("role, status", [(A, 200), (M, 200), (Q, 200), (G, 404)])
def test_a_group_an_agent_is_not_in_is_not_found_in_the_api_the_page_and_its_fragments(app, group_viewers, two_groups,
                                                                                       role, status):
    browser, token = group_viewers[role]
    support = two_groups["support"]
    assert browser.get(f"/api/groups/{support}", headers=token).status_code == status
    assert browser.get(f"/groups/{support}").status_code == status
    assert browser.get(f"/groups/{support}/edit", headers={"HX-Request": "true"}).status_code == status
    assert browser.get(f"/api/groups/{two_groups['sales']}", headers=token).status_code == 200


@pytest.mark.parametrize("role, status", [(A, 200), (M, 200), (Q, 403), (G, 403)])
def test_only_member_editors_search_every_extension_to_add(app, group_viewers, two_groups, role, status):
    browser, _ = group_viewers[role]
    answer = browser.get(f"/groups/{two_groups['sales']}/candidates?q=100", headers={"HX-Request": "true"})
    assert answer.status_code == status
    assert ("1003" in answer.get_data(as_text=True)) == (status == 200)
