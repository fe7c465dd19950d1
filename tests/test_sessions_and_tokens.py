"""Sessions end on the server: a logout and an idle browser end them, whatever a browser still holds."""

import http.cookiejar
import re
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_user
from pbxweb.models import BrowserSession, utcnow

from .test_dashboard_browser import server  # noqa: F401 — a fixture
from .test_dashboard_browser import site  # noqa: F401 — a fixture

def sign_in(client, username="alice"):
    response = client.post("/login", data={"username": username, "password": "correct horse battery"})
    assert response.status_code == 302
    return response


# --- browser sessions --------------------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_cookie_replayed_after_logout_opens_nothing_under_gunicorn(server):  # noqa: F811
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
