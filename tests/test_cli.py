"""`flask pbx …` commands: accounts, tokens, and `verify` against a database and a (test) Asterisk."""


import pytest

from pbxweb.models import User

from .pgcluster import free_port


def test_create_user_prints_a_generated_password_once_and_it_works(runner, db):
    result = runner.invoke(args=["pbx", "create-user", "alice", "--role", "manager"])
    assert result.exit_code == 0, result.output
    password = result.output.split("Password (shown once): ")[1].strip()
    user = db.session.query(User).filter_by(username="alice").one()
    assert user.role == "manager" and user.check_password(password) and password not in user.password_hash


def test_create_user_reads_the_password_from_stdin(runner, db):
    result = runner.invoke(args=["pbx", "create-user", "bob", "--role", "agent", "--password-stdin"], input="a-long-enough-pass\n")
    assert result.exit_code == 0 and "a-long-enough-pass" not in result.output
    assert db.session.query(User).filter_by(username="bob").one().check_password("a-long-enough-pass")


def test_create_user_with_an_unknown_extension_fails_clearly(runner, db):
    result = runner.invoke(args=["pbx", "create-user", "carol", "--role", "agent", "--extension", "4242"])
    assert result.exit_code == 1 and "extension: 4242 is not an extension" in result.output
    assert db.session.query(User).count() == 0


def test_a_created_token_authenticates_the_api(runner, client):
    runner.invoke(args=["pbx", "create-user", "alice", "--role", "admin"])
    token = runner.invoke(args=["pbx", "create-token", "alice"]).output.strip()
    assert client.get("/api/extensions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/extensions", headers={"Authorization": "Bearer pbx_wrong"}).status_code == 401
    assert client.get("/api/extensions").status_code == 401


def test_roles_limit_the_api(client, app):
    from .conftest import token_for

    manager = {"Authorization": f"Bearer {token_for('manager')}"}
    agent = {"Authorization": f"Bearer {token_for('agent')}"}
    assert client.get("/api/extensions", headers=manager).status_code == 200
    assert client.post("/api/extensions", json={"number": "1001", "name": "x"}, headers=manager).status_code == 403
    assert client.get("/api/extensions", headers=agent).status_code == 403


def test_first_run_creates_one_admin_and_prints_its_password_once(runner, db):
    first = runner.invoke(args=["pbx", "first-run"])
    assert "Password (shown only now):" in first.output
    second = runner.invoke(args=["pbx", "first-run"])
    assert "Password" not in second.output
    assert db.session.query(User).filter_by(role="admin").count() == 1


@pytest.fixture
def ami_settings(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME="miniadmin", AMI_SECRET="miniadmin-secret")
    return ami_server


def test_verify_passes_when_everything_matches(runner, api, ami_settings):
    # The captured Asterisk knows endpoints 1001 and 1002.
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"User {number}"})
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 0, result.output
    assert "✔ database reachable" in result.output
    assert "✔ migrations at head" in result.output
    assert "✔ AMI login — Asterisk 22.10.1" in result.output
    assert "✘" not in result.output


def test_verify_fails_on_drift_with_a_hint(runner, api, db, ami_settings):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"User {number}"})
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ps_aors WHERE id = '1002'")
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1
    assert "✘ realtime rows match the models — 1 row(s) missing or drifted: run `flask --app wsgi pbx sync`" in result.output


def test_verify_fails_on_a_sip_login_that_nobody_owns(runner, api, db, ami_settings):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"User {number}"})
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ps_auths (id, auth_type, username, password) VALUES ('4001', 'userpass', '4001', 'Left-Behind-Pass1')")
        conn.exec_driver_sql("INSERT INTO ps_auths (id, auth_type, username) VALUES ('4002', 'userpass', '4002')")
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1
    assert "✘ no SIP credentials without an owner — ps_auths 4001 still let a phone sign in" in result.output
    assert "4002" not in result.output.split("without an owner")[1].splitlines()[0]


def test_verify_names_the_endpoints_asterisk_does_not_see(runner, api, ami_settings):
    api.post("/api/extensions", json={"number": "1003", "name": "New Person"})
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1
    assert "✘ Asterisk sees every endpoint in ps_endpoints" in result.output and "1003" in result.output


def test_verify_with_no_asterisk_fails_clearly_without_a_traceback(runner, app):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=free_port(), AMI_USERNAME="u", AMI_SECRET="s")
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1
    assert "✘ AMI reachable — cannot connect to AMI at 127.0.0.1:" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_verify_reports_bad_ami_credentials(runner, app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME="miniadmin", AMI_SECRET="wrong")
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1
    assert "✔ AMI reachable" in result.output
    assert "✘ AMI login — AMI login refused: Authentication failed" in result.output


def test_verify_without_ami_settings_says_which_are_missing(runner, app):
    result = runner.invoke(args=["pbx", "verify"])
    assert result.exit_code == 1 and "AMI_USERNAME and AMI_SECRET are not set" in result.output


def test_verify_fails_when_the_database_is_unreachable():
    from pbxweb import create_app

    from .conftest import app_config

    broken = create_app(app_config(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    result = broken.test_cli_runner().invoke(args=["pbx", "verify"])
    assert result.exit_code == 1 and "✘ database reachable" in result.output
