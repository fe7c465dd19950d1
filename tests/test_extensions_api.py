"""Extensions through the JSON API: each rule an admin or a script relies on, with Asterisk's rows checked."""

import pytest

from pbxweb.models import Extension


def create(api, **fields):
    body = {"number": "1001", "name": "John Doe", **fields}
    return api.post("/api/extensions", json=body)


def test_create_returns_the_extension_and_its_generated_password_once(api):
    response = create(api)
    assert response.status_code == 201
    body = response.get_json()
    assert body["number"] == "1001" and body["name"] == "John Doe"
    assert len(body["password"]) >= 16
    listed = api.get("/api/extensions").get_json()["extensions"]
    assert [e["number"] for e in listed] == ["1001"]
    assert "password" not in listed[0] and body["password"] not in str(listed)
    assert "password" not in api.get("/api/extensions/1001").get_json()


def test_create_writes_the_seed_defaults_into_asterisks_tables(api, rows):
    password = create(api, voicemail=True).get_json()["password"]
    assert rows("ps_endpoints") == [
        {
            "id": "1001",
            "transport": "transport-udp",
            "aors": "1001",
            "auth": "1001",
            "context": "from-internal",
            "disallow": "all",
            "allow": "ulaw,alaw,g722,opus",
            "direct_media": "no",
            "force_rport": "yes",
            "rewrite_contact": "yes",
            "callerid": '"John Doe" <1001>',
            "mailboxes": "1001@default",
            "dtmf_mode": "rfc4733",
        }
    ]
    assert rows("ps_auths") == [{"id": "1001", "auth_type": "userpass", "username": "1001", "password": password}]
    assert rows("ps_aors") == [
        {"id": "1001", "max_contacts": 1, "remove_existing": "yes", "qualify_frequency": 60, "default_expiration": 3600,
         "mailboxes": "1001@default"}
    ]


def test_voicemail_off_leaves_no_mailbox(api, rows):
    create(api)
    assert "mailboxes" not in rows("ps_endpoints")[0]


def test_list_filters_by_number_or_name(api):
    create(api, number="1001", name="John Doe")
    create(api, number="1002", name="Mary Major")
    assert [e["number"] for e in api.get("/api/extensions?q=mary").get_json()["extensions"]] == ["1002"]
    assert [e["number"] for e in api.get("/api/extensions?q=1001").get_json()["extensions"]] == ["1001"]


def test_renaming_updates_the_callerid(api, rows):
    create(api)
    assert api.patch("/api/extensions/1001", json={"name": "Jane Roe"}).status_code == 200
    assert rows("ps_endpoints")[0]["callerid"] == '"Jane Roe" <1001>'


def test_changing_the_number_moves_the_rows_with_options_set_by_hand(api, rows, db):
    create(api)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ps_endpoints SET language = 'fr' WHERE id = '1001'")
    assert api.patch("/api/extensions/1001", json={"number": "2001"}).status_code == 200
    endpoints = rows("ps_endpoints")
    assert [e["id"] for e in endpoints] == ["2001"]
    assert endpoints[0]["language"] == "fr"
    assert endpoints[0]["callerid"] == '"John Doe" <2001>'
    assert [a["id"] for a in rows("ps_auths")] == ["2001"] and rows("ps_auths")[0]["username"] == "2001"
    assert [a["id"] for a in rows("ps_aors")] == ["2001"]
    assert api.get("/api/extensions/1001").status_code == 404


def test_deactivating_removes_the_rows_and_reactivating_restores_them(api, rows):
    create(api)
    api.patch("/api/extensions/1001", json={"is_active": False})
    assert rows("ps_endpoints") == [] and rows("ps_auths") == [] and rows("ps_aors") == []
    api.patch("/api/extensions/1001", json={"is_active": True})
    assert [e["id"] for e in rows("ps_endpoints")] == ["1001"]


def test_deleting_removes_the_rows(api, rows):
    create(api)
    assert api.delete("/api/extensions/1001").status_code == 204
    assert rows("ps_endpoints") == [] and rows("ps_auths") == [] and rows("ps_aors") == []
    assert api.get("/api/extensions/1001").status_code == 404


def test_password_regeneration_returns_the_new_password_once_and_writes_it(api, rows):
    old = create(api).get_json()["password"]
    response = api.post("/api/extensions/1001/password")
    new = response.get_json()["password"]
    assert response.status_code == 200 and new != old and len(new) >= 16
    assert rows("ps_auths")[0]["password"] == new


def test_a_strong_given_password_is_kept(api, rows):
    assert create(api, password="Correct-Horse-Battery-9").status_code == 201
    assert rows("ps_auths")[0]["password"] == "Correct-Horse-Battery-9"


def test_options_given_at_creation_reach_asterisk(api, rows):
    create(api, codecs=["g722", "ulaw"], email="john@example.com", is_active=True)
    assert rows("ps_endpoints")[0]["allow"] == "g722,ulaw"
    assert api.get("/api/extensions/1001").get_json()["email"] == "john@example.com"


BAD_INPUT = [
    ({"number": "abc"}, "number"),
    ({"number": "1"}, "number"),
    ({"number": "1234567"}, "number"),
    ({"number": "10 1"}, "number"),
    ({"number": "0123"}, "number"),
    ({"name": 'John "JJ" Doe'}, "name"),
    ({"name": "John <Doe>"}, "name"),
    ({"name": "John\nDoe"}, "name"),
    ({"name": "John\x07Doe"}, "name"),
    ({"name": "John;Doe"}, "name"),
    ({"name": "A name far too long for the callerid"}, "name"),
    ({"name": ""}, "name"),
    ({"password": "short1A"}, "password"),
    ({"password": "alllowercaseletters"}, "password"),
    ({"password": "Abcdefgh12345;xyz"}, "password"),
    ({"password": "aaaaaaaaaaaaaaaaA1"}, "password"),
    ({"codecs": ["ulaw", "nosuchcodec"]}, "codecs"),
    ({"codecs": "ulaw;alaw"}, "codecs"),
    ({"context": "from;internal"}, "context"),
    ({"email": "not-an-email"}, "email"),
    ({"max_contacts": 0}, "max_contacts"),
    ({"voicemail": "maybe"}, "voicemail"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("fields,field", BAD_INPUT, ids=[f"{f}:{list(b.values())[0]!r}"[:40] for b, f in BAD_INPUT])
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(api, realtime_counts, db, fields, field):
    before = realtime_counts()
    response = create(api, **fields)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert db.session.query(Extension).count() == 0
    assert realtime_counts() == before


def test_the_callerid_limit_counts_the_whole_callerid_string(api):
    # '"' + 31 chars + '" <1001>' is exactly 40 characters.
    assert create(api, name="x" * 31).status_code == 201
    assert create(api, number="1002", name="x" * 32).status_code == 400


def test_a_duplicate_number_is_a_conflict(api, rows):
    create(api)
    response = create(api, name="Someone Else")
    assert response.status_code == 409 and "number" in response.get_json()["errors"]
    assert len(rows("ps_endpoints")) == 1


def test_an_endpoint_made_by_hand_in_asterisks_table_is_not_taken_over(api, rows, db):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ps_endpoints (id, context) VALUES ('1001', 'custom')")
    response = create(api)
    assert response.status_code == 409
    assert rows("ps_endpoints") == [{"id": "1001", "context": "custom"}]


def test_bad_input_on_update_writes_nothing(api, rows):
    create(api)
    before = rows("ps_endpoints")
    response = api.patch("/api/extensions/1001", json={"name": "Jane", "codecs": ["bogus"]})
    assert response.status_code == 400 and "codecs" in response.get_json()["errors"]
    assert rows("ps_endpoints") == before
    assert api.get("/api/extensions/1001").get_json()["name"] == "John Doe"


@pytest.fixture
def thirty(db):
    """Extensions 1000-1029 straight into the model table (paging does not need their realtime rows)."""
    import sqlalchemy as sa

    from pbxweb.models import Extension

    with db.engine.begin() as conn:
        conn.execute(sa.insert(Extension.__table__), [
            {"number": str(1000 + i), "name": f"Person {i}" + (" 50%_off" if i == 7 else ""), "sip_password": "x" * 24,
             "context": "from-internal", "codecs": "ulaw", "voicemail": False, "max_contacts": 1, "is_active": True}
            for i in range(30)
        ])


def walk(api, url):
    numbers, cursor, totals = [], None, set()
    while True:
        body = api.get(url + (f"&cursor={cursor}" if cursor else "")).get_json()
        numbers += [e["number"] for e in body["extensions"]]
        totals.add(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return numbers, totals


@pytest.mark.parametrize("url", ["/api/extensions?limit=7", "/api/extensions/status?limit=7"])
def test_lists_come_in_pages_that_walk_every_extension_once(api, thirty, url):
    numbers, totals = walk(api, url)
    assert numbers == [str(1000 + i) for i in range(30)] and totals == {30}


def test_a_page_holds_100_by_default_and_500_at_most(api, thirty):
    assert len(api.get("/api/extensions").get_json()["extensions"]) == 30
    response = api.get("/api/extensions?limit=501")
    assert response.status_code == 400 and "limit" in response.get_json()["errors"]


@pytest.mark.parametrize("query", ["cursor=%%%", "cursor=_w", "limit=0", "limit=ten"])
def test_a_bad_paging_parameter_is_named(api, thirty, query):
    response = api.get(f"/api/extensions?{query}")
    assert response.status_code == 400 and query.split("=")[0] in response.get_json()["errors"]


def test_search_narrows_the_list_and_its_total(api, thirty):
    body = api.get("/api/extensions?q=person 2").get_json()
    assert [e["number"] for e in body["extensions"]] == ["1002"] + [str(1020 + i) for i in range(10)]
    assert body["total"] == 11
    assert api.get("/api/extensions?q=102").get_json()["total"] == 10


def test_search_takes_like_wildcards_literally(api, thirty):
    body = api.get("/api/extensions?q=50%_").get_json()
    assert [e["number"] for e in body["extensions"]] == ["1007"]
    assert api.get("/api/extensions?q=_").get_json()["total"] == 1
