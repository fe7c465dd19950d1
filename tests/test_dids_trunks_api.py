"""DIDs route inbound numbers; trunks become PJSIP endpoints with outbound auth, registration and identify."""

import pytest


@pytest.fixture
def ext_id(api, db):
    from pbxweb.models import Extension

    api.post("/api/extensions", json={"number": "1001", "name": "John Doe"})
    return db.session.query(Extension).one().id


@pytest.fixture
def group_id(api):
    return api.post("/api/groups", json={"name": "Sales", "ring_strategy": "hunt"}).get_json()["id"]


def test_a_did_to_a_group_reaches_the_dialplan_table(api, rows, group_id):
    response = api.post("/api/dids", json={"number": "0612345678", "destination_type": "group", "destination": group_id})
    assert response.status_code == 201
    assert rows("dids") == [
        {"number": "0612345678", "destination_type": "group", "destination": str(group_id), "is_active": True}
    ]


def test_a_did_to_an_extension_follows_the_extensions_number(api, rows, ext_id):
    api.post("/api/dids", json={"number": "0612345678", "destination_type": "extension", "destination": "1001"})
    assert rows("dids")[0]["destination"] == "1001"
    api.patch("/api/extensions/1001", json={"number": "2001"})
    assert rows("dids")[0]["destination"] == "2001"
    api.patch("/api/extensions/2001", json={"is_active": False})
    assert rows("dids")[0]["is_active"] is False


def test_a_destination_with_dids_cannot_be_deleted(api, rows, ext_id):
    api.post("/api/dids", json={"number": "0612345678", "destination_type": "extension", "destination": "1001"})
    assert api.delete("/api/extensions/1001").status_code == 409
    assert len(rows("ps_endpoints")) == 1


@pytest.mark.parametrize(
    "fields,field",
    [({"number": "06-1234"}, "number"), ({"number": "+31612345678"}, "number"),
     ({"destination_type": "voicemail"}, "destination_type"), ({"destination": 999}, "destination")],
)
def test_bad_did_input_is_refused_and_writes_nothing(api, realtime_counts, group_id, fields, field):
    before = realtime_counts()
    body = {"number": "0612345678", "destination_type": "group", "destination": group_id, **fields}
    response = api.post("/api/dids", json=body)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert realtime_counts() == before


def test_a_duplicate_did_is_a_conflict(api, group_id):
    body = {"number": "0612345678", "destination_type": "group", "destination": group_id}
    api.post("/api/dids", json=body)
    assert api.post("/api/dids", json=body).status_code == 409


TRUNK = {"name": "provider", "host": "sip.example.net", "port": 5060, "username": "acct42",
         "password": "trunk-Secret-99", "register": True, "match": ["192.0.2.0/24", "198.51.100.7"]}


def test_a_registering_trunk_writes_endpoint_auth_aor_registration_and_identify(api, rows):
    response = api.post("/api/trunks", json=TRUNK)
    assert response.status_code == 201
    assert "password" not in response.get_json()
    endpoint = rows("ps_endpoints")[0]
    assert endpoint["id"] == "provider" and endpoint["context"] == "from-external"
    assert endpoint["outbound_auth"] == "provider" and endpoint["aors"] == "provider"
    assert rows("ps_auths") == [{"id": "provider", "auth_type": "userpass", "username": "acct42", "password": "trunk-Secret-99"}]
    assert rows("ps_aors")[0]["contact"] == "sip:sip.example.net:5060"
    registration = rows("ps_registrations")[0]
    assert registration["server_uri"] == "sip:sip.example.net:5060"
    assert registration["client_uri"] == "sip:acct42@sip.example.net:5060"
    assert registration["outbound_auth"] == "provider"
    assert [(r["id"], r["endpoint"], r["match"]) for r in rows("ps_endpoint_id_ips")] == [
        ("provider-1", "provider", "192.0.2.0/24"),
        ("provider-2", "provider", "198.51.100.7/32"),
    ]


def test_turning_registration_off_removes_the_registration(api, rows):
    trunk = api.post("/api/trunks", json=TRUNK).get_json()
    api.patch(f"/api/trunks/{trunk['id']}", json={"register": False})
    assert rows("ps_registrations") == []
    assert len(rows("ps_endpoints")) == 1


def test_renaming_a_trunk_moves_its_rows(api, rows):
    trunk = api.post("/api/trunks", json=TRUNK).get_json()
    api.patch(f"/api/trunks/{trunk['id']}", json={"name": "carrier", "match": "203.0.113.9"})
    assert [r["id"] for r in rows("ps_endpoints")] == ["carrier"]
    assert [r["id"] for r in rows("ps_registrations")] == ["carrier"]
    assert [(r["id"], r["endpoint"]) for r in rows("ps_endpoint_id_ips")] == [("carrier-1", "carrier")]


def test_deleting_a_trunk_removes_all_its_rows(api, rows, realtime_counts):
    trunk = api.post("/api/trunks", json=TRUNK).get_json()
    assert api.delete(f"/api/trunks/{trunk['id']}").status_code == 204
    assert all(n == 0 for n in realtime_counts().values())


@pytest.mark.parametrize(
    "fields,field",
    [({"host": "not a host!"}, "host"), ({"host": "sip..example"}, "host"), ({"name": "1234"}, "name"),
     ({"password": "pa;ss"}, "password"), ({"match": ["10.0.0.300"]}, "match"), ({"port": 70000}, "port"),
     ({"transport": "transport-carrier-pigeon"}, "transport"), ({"username": None}, "username")],
)
def test_bad_trunk_input_is_refused_and_writes_nothing(api, realtime_counts, fields, field):
    before = realtime_counts()
    response = api.post("/api/trunks", json={**TRUNK, **fields})
    assert response.status_code == 400 and field in response.get_json()["errors"], response.get_json()
    assert realtime_counts() == before
