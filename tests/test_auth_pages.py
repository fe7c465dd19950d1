"""Logging in to the pages."""

from pbxweb.auth.service import create_user


def test_the_home_page_sends_a_stranger_to_the_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_a_user_logs_in_with_the_right_password_only(client, app):
    create_user("alice", "admin", "correct horse battery")
    wrong = client.post("/login", data={"username": "alice", "password": "wrong"})
    assert wrong.status_code == 401 and b"wrong password" in wrong.data
    right = client.post("/login", data={"username": "alice", "password": "correct horse battery"})
    assert right.status_code == 302
    assert b"Welcome, alice" in client.get("/").data


def test_a_deactivated_user_cannot_log_in(client, app, db):
    user, _ = create_user("bob", "agent", "correct horse battery")
    user.is_active = False
    db.session.commit()
    assert client.post("/login", data={"username": "bob", "password": "correct horse battery"}).status_code == 401


def test_pages_load_the_vendored_htmx(client):
    page = client.get("/login").data.decode()
    assert "/static/vendor/htmx/htmx-2.0.11.min.js" in page
    assert client.get("/static/vendor/htmx/htmx-2.0.11.min.js").status_code == 200
