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
    assert b"Waiting callers" in client.get("/").data and b"alice" in client.get("/").data


def test_a_deactivated_user_cannot_log_in(client, app, db):
    user, _ = create_user("bob", "agent", "correct horse battery")
    user.is_active = False
    db.session.commit()
    assert client.post("/login", data={"username": "bob", "password": "correct horse battery"}).status_code == 401


def test_pages_load_the_vendored_htmx(client):
    page = client.get("/login").data.decode()
    assert "/static/vendor/htmx/htmx-2.0.11.min.js" in page
    assert client.get("/static/vendor/htmx/htmx-2.0.11.min.js").status_code == 200


def _median_ms(client, username: str, password: str, address: str, tries: int = 5) -> float:
    import statistics
    import time

    timings = []
    for _ in range(tries):
        start = time.perf_counter()
        response = client.post("/login", data={"username": username, "password": password},
                               environ_base={"REMOTE_ADDR": address})
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 401
    return statistics.median(timings)


def test_sign_in_takes_as_long_for_an_unknown_or_deactivated_user_as_for_a_wrong_password(client, app, db):
    create_user("alice", "admin", "correct horse battery")
    for name in ("bob", "carol"):
        user, _ = create_user(name, "agent", "correct horse battery")
        user.is_active = False
    db.session.commit()
    # Each probe from its own address and under the per-user limit: the throttle does not answer for them.
    wrong = _median_ms(client, "alice", "wrong", "192.0.2.1", tries=4)
    unknown = _median_ms(client, "nobody", "wrong", "192.0.2.2", tries=4)
    deactivated = _median_ms(client, "bob", "wrong", "192.0.2.3", tries=4)
    deactivated_right = _median_ms(client, "carol", "correct horse battery", "192.0.2.4", tries=4)
    for other in (unknown, deactivated, deactivated_right):
        assert 0.5 < other / wrong < 2, (wrong, unknown, deactivated, deactivated_right)


def test_repeated_failures_for_a_user_are_throttled_even_with_the_right_password(client, app):
    create_user("alice", "admin", "correct horse battery")
    for n in range(5):
        address = f"192.0.2.{n + 10}"
        assert client.post("/login", data={"username": "alice", "password": "guess"}, environ_base={"REMOTE_ADDR": address}).status_code == 401
    refused = client.post("/login", data={"username": "ALICE", "password": "correct horse battery"},
                          environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert refused.status_code == 429
    assert b"Too many failed sign-ins" in refused.data and b"Try again in 15 minutes" in refused.data


def test_repeated_failures_from_an_address_are_throttled_across_user_names(client, app):
    create_user("alice", "admin", "correct horse battery")
    for n in range(20):
        client.post("/login", data={"username": f"guess{n}", "password": "x"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    refused = client.post("/login", data={"username": "alice", "password": "correct horse battery"},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 429
    elsewhere = client.post("/login", data={"username": "alice", "password": "correct horse battery"},
                            environ_base={"REMOTE_ADDR": "203.0.113.10"})
    assert elsewhere.status_code == 302


def test_the_failure_count_is_in_the_database_so_every_worker_sees_it(client, app, db):
    from pbxweb.models import LoginFailures

    client.post("/login", data={"username": "alice", "password": "x"}, environ_base={"REMOTE_ADDR": "192.0.2.50"})
    client.post("/login", data={"username": "alice", "password": "x"}, environ_base={"REMOTE_ADDR": "192.0.2.50"})
    counts = {row.key: row.failures for row in db.session.query(LoginFailures)}
    assert counts == {"user:alice": 2, "addr:192.0.2.50": 2}


def test_a_successful_sign_in_clears_the_users_failures(client, app, db):
    from pbxweb.models import LoginFailures

    create_user("alice", "admin", "correct horse battery")
    for _ in range(4):
        client.post("/login", data={"username": "alice", "password": "x"})
    assert client.post("/login", data={"username": "alice", "password": "correct horse battery"}).status_code == 302
    assert db.session.get(LoginFailures, "user:alice") is None
