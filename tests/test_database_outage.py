"""While the database is unreachable every request gets a clear 503 (JSON for the API), and a change that
was committed is always answered: nothing that can fail runs between a commit and its response."""

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from pbxweb import create_app

from .conftest import app_config, token_for
from .pgcluster import free_port


@pytest.fixture
def unreachable_app():
    """The app with a database URL where nothing listens (a server that is down or restarting)."""
    return create_app(app_config(f"postgresql://postgres@127.0.0.1:{free_port()}/pbx"))


def test_the_api_answers_503_json_while_the_database_is_down(unreachable_app):
    response = unreachable_app.test_client().get("/api/extensions", headers={"Authorization": "Bearer pbx_x"})
    assert response.status_code == 503
    assert "database" in response.get_json()["errors"]["_"]
    assert response.headers["Retry-After"]


def test_a_page_answers_503_html_while_the_database_is_down(unreachable_app):
    response = unreachable_app.test_client().post("/login", data={"username": "admin", "password": "x"})
    assert response.status_code == 503 and response.mimetype == "text/html"


@pytest.fixture
def statements_after_commit(db):
    """SQL sent between a commit and the end of the request: should be none."""
    seen: list[str] = []
    committed = threading.Event()

    def on_commit(session):
        committed.set()

    def on_execute(conn, cursor, statement, *args):
        if committed.is_set():
            seen.append(statement)

    event.listen(db.session, "after_commit", on_commit)
    event.listen(db.engine, "before_cursor_execute", on_execute)

    def reset():
        committed.clear()
        seen.clear()

    yield seen, reset
    event.remove(db.session, "after_commit", on_commit)
    event.remove(db.engine, "before_cursor_execute", on_execute)


def test_nothing_runs_between_a_commit_and_its_answer(api, two_groups, statements_after_commit):
    seen, reset = statements_after_commit
    writes = [
        ("post", "/api/extensions", {"number": "2001", "name": "Ann"}),
        ("patch", "/api/extensions/2001", {"name": "Ann B"}),
        ("post", "/api/extensions/2001/password", None),
        ("post", "/api/groups", {"name": "Night", "members": [{"number": "2001"}]}),
        ("put", f"/api/groups/{two_groups['sales']}/members", {"members": [{"number": "1002"}, {"number": "2001"}]}),
        ("patch", f"/api/groups/{two_groups['sales']}", {"ring_strategy": "random"}),
        ("post", "/api/dids", {"number": "0612345678", "destination_type": "extension", "destination": "2001"}),
        ("post", "/api/trunks", {"name": "provider", "host": "sip.example.net", "username": "u1", "password": "Pw-123456789abc",
                                 "register": True}),
    ]
    for method, url, body in writes:
        reset()
        response = getattr(api, method)(url, json=body) if body is not None else getattr(api, method)(url)
        assert response.status_code in (200, 201), (url, response.get_json())
        assert seen == [], (url, seen)


def test_a_database_restart_gives_503s_never_500s(app, pg_cluster, db):
    if pg_cluster is None:
        pytest.skip("needs the throwaway cluster to restart it")
    headers = {"Authorization": f"Bearer {token_for('admin')}"}
    answers: list[tuple[str, int]] = []
    stop = threading.Event()

    def create(prefix: int):
        client = app.test_client()
        n = 0
        while not stop.is_set() and n < 400:
            number = f"{prefix}{n:03d}"
            response = client.post("/api/extensions", json={"number": number, "name": "Load"}, headers=headers)
            answers.append((number, response.status_code))
            n += 1

    workers = [threading.Thread(target=create, args=(p,)) for p in (6, 7)]
    for worker in workers:
        worker.start()
    pg_cluster.restart()
    stop.set()
    for worker in workers:
        worker.join()
    statuses = {status for _, status in answers}
    assert statuses <= {201, 503}, statuses
    with db.engine.connect() as conn:
        existing = set(conn.execute(sa.text("SELECT number FROM pbx_extensions WHERE name = 'Load'")).scalars())
    assert {number for number, status in answers if status == 201} <= existing
