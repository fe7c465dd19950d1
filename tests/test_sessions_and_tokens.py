"""Sessions and API tokens end: a logout, an idle browser, a password reset and a deactivation each end what
they should on the server, whatever a browser or a script still holds; tokens are listed and revoked from the
command line and the users page, and every revocation is in the audit log."""

import http.cookiejar
import re
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_token, create_user, reset_password, update_user
from pbxweb.models import ApiToken, AuditEntry, BrowserSession, User, utcnow

from .conftest import Api
from .test_access import signed_in

HX = {"HX-Request": "true"}


def sign_in(client, username="alice"):
    response = client.post("/login", data={"username": username, "password": "correct horse battery"})
    assert response.status_code == 302
    return response


# --- browser sessions --------------------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_cookie_replayed_after_logout_opens_nothing_under_gunicorn(server):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def csrf_token(path):
        with opener.open(f"{server}{path}") as page:
            return re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)

    def post(path, **form):
        data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
        try:
            return opener.open(f"{server}{path}", data=data)
        except urllib.error.HTTPError as answer:  # a 302, not followed
            return answer

    assert post("/login", username="alice", password="correct horse battery", csrf_token=csrf_token("/login")).status == 302
    cookie = next(c.value for c in jar if c.name == "session")

    def calls_with(cookie_value):
        request = urllib.request.Request(f"{server}/calls", headers={"Cookie": f"session={cookie_value}"})
        try:
            with urllib.request.build_opener(NoRedirect).open(request) as answer:
                return answer.status, answer.headers.get("Location")
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers.get("Location")

    assert calls_with(cookie)[0] == 200
    assert post("/logout", csrf_token=csrf_token("/calls")).status == 302
    status, location = calls_with(cookie)
    assert status == 302 and "/login" in location


def test_a_session_left_idle_longer_than_the_setting_is_signed_out(client, app, db):
    app.config["PBX_SESSION_IDLE_HOURS"] = 12
    create_user("alice", "admin", "correct horse battery")
    sign_in(client)
    db.session.execute(sa.update(BrowserSession).values(last_seen_at=utcnow() - timedelta(hours=11, minutes=50)))
    db.session.commit()
    assert client.get("/calls").status_code == 200
    db.session.execute(sa.update(BrowserSession).values(last_seen_at=utcnow() - timedelta(hours=12, minutes=10)))
    db.session.commit()
    response = client.get("/calls")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BrowserSession)) == 0


def test_a_request_moves_the_last_seen_time_at_most_once_a_minute(client, app, db):
    create_user("alice", "admin", "correct horse battery")
    sign_in(client)
    seen = db.session.scalar(sa.select(BrowserSession.last_seen_at))
    for _ in range(3):
        client.get("/calls")
    db.session.expire_all()
    assert db.session.scalar(sa.select(BrowserSession.last_seen_at)) == seen
    db.session.execute(sa.update(BrowserSession).values(last_seen_at=seen - timedelta(minutes=2)))
    db.session.commit()
    client.get("/calls")
    db.session.expire_all()
    assert db.session.scalar(sa.select(BrowserSession.last_seen_at)) > seen


def test_the_idle_timeout_setting_must_be_a_number_of_hours(tmp_path):
    from pbxweb.config import from_environment

    assert from_environment(str(tmp_path), {"SECRET_KEY": "k"})["PBX_SESSION_IDLE_HOURS"] == 12
    assert from_environment(str(tmp_path), {"SECRET_KEY": "k", "PBX_SESSION_IDLE_HOURS": "0.5"})["PBX_SESSION_IDLE_HOURS"] == 0.5
    for bad in ("twelve", "0", "-3", "nan"):
        with pytest.raises(ValueError, match="PBX_SESSION_IDLE_HOURS"):
            from_environment(str(tmp_path), {"SECRET_KEY": "k", "PBX_SESSION_IDLE_HOURS": bad})


# --- API tokens --------------------------------------------------------------------------------------------


@pytest.fixture
def alice(app):
    create_user("boss", "admin", "correct horse battery")
    user, _ = create_user("alice", "manager", "correct horse battery")
    return user


def boss(db):
    return db.session.query(User).filter_by(username="boss").one()


def test_a_password_reset_revokes_the_users_tokens(client, db, alice):
    api = Api(client, create_token("alice", "nightly export"))
    assert api.get("/api/extensions").status_code == 200
    reset_password(alice.id)
    assert api.get("/api/extensions").status_code == 401


def test_a_deactivation_revokes_tokens_and_a_reactivation_does_not_bring_them_back(client, db, alice):
    api = Api(client, create_token("alice", "nightly export"))
    update_user(alice.id, {"is_active": False}, boss(db))
    assert api.get("/api/extensions").status_code == 401
    update_user(alice.id, {"is_active": True}, boss(db))
    assert api.get("/api/extensions").status_code == 401
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_pbx_tokens_lists_a_users_tokens_and_revoke_token_ends_one(runner, client, db, alice):
    nightly = Api(client, create_token("alice", "nightly export"))
    wallboard = Api(client, create_token("alice", "wallboard"))
    assert nightly.get("/api/extensions").status_code == 200
    listing = runner.invoke(args=["pbx", "tokens", "alice"])
    assert listing.exit_code == 0
    lines = {line.split()[1]: line for line in listing.output.splitlines()[1:]}
    assert set(lines) == {"nightly", "wallboard"}
    assert "never" not in lines["nightly"] and lines["wallboard"].endswith("never")  # last used
    nightly_id = db.session.scalar(sa.select(ApiToken.id).where(ApiToken.name == "nightly export"))

    revoked = runner.invoke(args=["pbx", "revoke-token", str(nightly_id)])
    assert revoked.exit_code == 0 and f"nightly export (#{nightly_id}) of alice" in revoked.output
    assert nightly.get("/api/extensions").status_code == 401
    assert wallboard.get("/api/extensions").status_code == 200


def test_the_token_commands_refuse_an_unknown_user_or_token_and_write_nothing(runner, db, alice):
    create_token("alice", "nightly export")
    unknown_user = runner.invoke(args=["pbx", "tokens", "nobody"])
    assert unknown_user.exit_code == 1 and "user nobody not found" in unknown_user.output
    unknown_token = runner.invoke(args=["pbx", "revoke-token", "999999"])
    assert unknown_token.exit_code == 1 and "token 999999 not found" in unknown_token.output
    not_a_number = runner.invoke(args=["pbx", "revoke-token", "abc"])
    assert not_a_number.exit_code == 2 and "TOKEN_ID" in not_a_number.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 1


def test_the_users_page_lists_tokens_and_revokes_one_after_a_dialog_naming_it(app, client, db, alice):
    create_token("alice", "nightly export")
    admin = signed_in(app, boss(db))
    page = admin.get("/users").get_data(as_text=True)
    row = page.split('id="token-rows"')[1].split("</tbody>")[0]
    assert "alice" in row and "nightly export" in row and "never" in row
    assert "Revoke the API token “nightly export” of alice?" in row
    token_id = db.session.scalar(sa.select(ApiToken.id))
    assert admin.post(f"/users/tokens/{token_id}/revoke", headers=HX).status_code == 200
    assert "nightly export" not in admin.get("/users").get_data(as_text=True)
    assert admin.post(f"/users/tokens/{token_id}/revoke", headers=HX).status_code == 404


def test_a_reset_or_a_deactivation_from_the_users_page_takes_the_users_tokens_off_it(app, db, alice):
    create_token("alice", "nightly export")
    admin = signed_in(app, boss(db))
    assert 'class="token-of-{0}"'.format(alice.id) in admin.get("/users").get_data(as_text=True)
    gone = f'hx-swap-oob="delete:.token-of-{alice.id}"'
    assert gone in admin.post(f"/users/{alice.id}/password", headers=HX).get_data(as_text=True)
    assert gone not in admin.post(f"/users/{alice.id}", data={"role": "manager", "is_active": "on"}, headers=HX).get_data(as_text=True)
    assert gone in admin.post(f"/users/{alice.id}", data={"role": "manager"}, headers=HX).get_data(as_text=True)


def test_revoking_a_token_is_in_the_audit_log_with_who_did_it(app, runner, db, alice):
    create_token("alice", "nightly export")
    token_id = db.session.scalar(sa.select(ApiToken.id))
    runner.invoke(args=["pbx", "revoke-token", str(token_id)])
    create_token("alice", "wallboard")
    signed_in(app, boss(db)).post(f"/users/{alice.id}/password", headers=HX)
    entries = [(e.actor, e.action, e.object_type, e.object_key)
               for e in db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "token").order_by(AuditEntry.id))]
    assert entries == [("cli", "create", "token", f"nightly export (#{token_id})"),
                       ("cli", "delete", "token", f"nightly export (#{token_id})"),
                       ("cli", "create", "token", f"wallboard (#{token_id + 1})"),
                       ("user:boss", "delete", "token", f"wallboard (#{token_id + 1})")]
