"""What realtime alone cannot apply goes to Asterisk over AMI after commit, and waits while AMI is down."""

import pytest

from pbxweb.ami import outbox
from pbxweb.models import AmiOutbox
from pbxweb.realtime.diff import TableChanges
from pbxweb.realtime.followups import followup_actions

TRUNK = {"name": "provider", "host": "sip.example.net", "username": "acct42", "password": "trunk-Secret-99", "register": True}


def wrote(**tables) -> dict[str, TableChanges]:
    """What a transaction wrote: table=[ids updated]."""
    return {table: TableChanges(table, updates=[((key,), {"x": 1}) for key in keys]) for table, keys in tables.items()}


def test_a_registration_change_needs_one_targeted_reload():
    actions = followup_actions(wrote(ps_registrations=["a", "b"], ps_endpoints=["a"]), set(), sorcery_cache=False)
    assert actions == [("Reload", {"Module": "res_pjsip_outbound_registration.so"})]


def test_without_a_sorcery_cache_an_extension_change_needs_nothing():
    assert followup_actions(wrote(ps_endpoints=["1001"], ps_auths=["1001"]), set(), sorcery_cache=False) == []


def test_with_a_sorcery_cache_changed_and_renamed_objects_are_expired():
    actions = followup_actions(wrote(ps_endpoints=["2001"]), {"1001"}, sorcery_cache=True)
    assert ("SorceryMemoryCacheExpireObject", {"Cache": "ps_endpoints", "Object": "1001"}) in actions
    assert ("SorceryMemoryCacheExpireObject", {"Cache": "ps_endpoints", "Object": "2001"}) in actions
    assert ("SorceryMemoryCacheExpireObject", {"Cache": "ps_auths", "Object": "1001"}) in actions


def pending(db):
    return [(r.action, r.fields) for r in db.session.query(AmiOutbox).order_by(AmiOutbox.id)]


def test_saving_a_registering_trunk_queues_the_reload_in_the_same_transaction(api, db):
    api.post("/api/trunks", json=TRUNK)
    assert pending(db) == [("Reload", {"Module": "res_pjsip_outbound_registration.so"})]


def test_a_change_that_does_not_touch_registrations_queues_nothing(api, db):
    trunk = api.post("/api/trunks", json=TRUNK).get_json()
    db.session.query(AmiOutbox).delete()
    db.session.commit()
    api.patch(f"/api/trunks/{trunk['id']}", json={"codecs": ["alaw"]})
    api.post("/api/extensions", json={"number": "1001", "name": "John Doe"})
    assert pending(db) == []


def test_a_rejected_change_queues_nothing(api, db):
    api.post("/api/trunks", json={**TRUNK, "host": "bad host"})
    assert pending(db) == []


@pytest.fixture
def ami(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME="miniadmin", AMI_SECRET="miniadmin-secret")
    return ami_server


def test_the_outbox_is_sent_to_asterisk_and_emptied(api, db, app, ami):
    api.post("/api/trunks", json=TRUNK)
    assert outbox.drain(app) == 1
    reloads = [m for m in ami.received if m.get("Action") == "Reload"]
    assert [m.get("Module") for m in reloads] == ["res_pjsip_outbound_registration.so"]
    db.session.expire_all()
    assert pending(db) == []


def test_while_ami_is_down_the_change_is_saved_and_applied_when_it_is_back(api, db, app, ami_server):
    from .pgcluster import free_port

    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=free_port(), AMI_USERNAME="miniadmin", AMI_SECRET="miniadmin-secret")
    assert api.post("/api/trunks", json=TRUNK).status_code == 201
    assert outbox.drain(app) == 0
    db.session.expire_all()
    assert len(pending(db)) == 1
    app.config["AMI_PORT"] = ami_server.port
    assert outbox.drain(app) == 1
    assert any(m.get("Action") == "Reload" for m in ami_server.received)


def test_with_the_sorcery_cache_on_an_extension_save_expires_its_objects(api, db, app, ami):
    app.config["PBX_SORCERY_CACHE"] = True
    api.post("/api/extensions", json={"number": "1001", "name": "John Doe"})
    assert outbox.drain(app) == 3
    expired = {(m.get("Cache"), m.get("Object")) for m in ami.received if m.get("Action") == "SorceryMemoryCacheExpireObject"}
    assert expired == {("ps_endpoints", "1001"), ("ps_auths", "1001"), ("ps_aors", "1001")}


def test_verify_reports_actions_still_waiting_for_ami(api, runner):
    api.post("/api/trunks", json=TRUNK)
    result = runner.invoke(args=["pbx", "verify"])
    assert "✘ changes that need AMI have reached Asterisk — 1 action(s) waiting since" in result.output


def test_after_commit_the_outbox_drains_by_itself(api, app, ami):
    import time

    app.config["AMI_OUTBOX_AUTODRAIN"] = True
    api.post("/api/trunks", json=TRUNK)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(m.get("Action") == "Reload" for m in ami.received):
        time.sleep(0.02)
    assert any(m.get("Action") == "Reload" for m in ami.received)


def test_a_trunk_saved_while_ami_is_down_says_it_will_apply_later(api):
    body = api.post("/api/trunks", json=TRUNK).get_json()
    assert "applied as soon as it is" in body["asterisk"]


def test_a_trunk_saved_while_the_listener_is_connected_needs_no_note(api, db):
    from pbxweb.live import store

    with db.engine.begin() as conn:
        store.set_ami_status(conn, connected=True, since=store.now(), asterisk_version="22.10.1")
    assert "asterisk" not in api.post("/api/trunks", json=TRUNK).get_json()
