"""Hostile or lenient input: refused with a 400 naming the field (404 for a path), decided before the
database sees it, and nothing written — values Asterisk would read differently never reach its tables."""

import re
import sys
import unicodedata

import pytest

from pbxweb import validation as v
from pbxweb.realtime.store import check_values


def trunk(**fields):
    return {"name": "provider", "host": "sip.example.net", **fields}


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"host": "fe80::1%x;transport=tcp"}, "host"),
        ({"host": "fe80::1%x\nfoo"}, "host"),
        ({"host": "fe80::1%eth0"}, "host"),
        ({"host": "300.1.1.1"}, "host"),
        ({"host": "1.2.3"}, "host"),
        ({"host": "0.0.0.0"}, "host"),
        ({"host": "224.0.0.1"}, "host"),
        ({"match": ["fe80::1%x;transport=tcp"]}, "match"),
        ({"match": ["fe80::1%x\nfoo"]}, "match"),
        ({"match": ["0.0.0.0/0"]}, "match"),
        ({"match": ["10.0.0.0/4"]}, "match"),
        ({"match": ["::/0"]}, "match"),
        ({"match": ["192.0.2.1", "192.0.2.1/32"]}, "match"),
        ({"name": "anonymous"}, "name"),
        ({"name": "transport-udp"}, "name"),
        ({"name": "global"}, "name"),
        ({"port": "5_060"}, "port"),
        ({"port": " 5060 "}, "port"),
        ({"username": "user", "password": "secret^3Bpart"}, "password"),
    ],
)
def test_a_trunk_value_asterisk_would_misread_is_refused(api, realtime_counts, fields, field):
    before = realtime_counts()
    response = api.post("/api/trunks", json=trunk(**fields))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
    assert realtime_counts() == before


def test_an_ipv6_trunk_host_is_written_as_a_sip_uri(api, rows):
    assert api.post("/api/trunks", json=trunk(host="2001:db8::1")).status_code == 201
    assert rows("ps_aors")[0]["contact"] == "sip:[2001:db8::1]:5060"


@pytest.mark.parametrize("name", ["a^3Bb", "Zo^22e", "Bob\u202eevil", "Line\u2028break", "Next\u0085line", "Zero\u200bwidth"])
def test_a_caller_id_name_that_reads_differently_is_refused(api, realtime_counts, name):
    before = realtime_counts()
    response = api.post("/api/extensions", json={"number": "1001", "name": name})
    assert response.status_code == 400 and "name" in response.get_json()["errors"]
    assert realtime_counts() == before


def test_a_caret_that_is_no_escape_is_kept(api, rows):
    assert api.post("/api/extensions", json={"number": "1001", "name": "Ann ^ Co"}).status_code == 201
    assert rows("ps_endpoints")[0]["callerid"] == '"Ann ^ Co" <1001>'


@pytest.mark.parametrize("password", ["Abcdefgh1234567\u202e", "Abcdefgh^3B234567xy", "Abcdefgh1234567\u2028"])
def test_a_sip_password_with_invisible_or_escaped_characters_is_refused(api, password):
    response = api.post("/api/extensions", json={"number": "1001", "name": "Ann", "password": password})
    assert response.status_code == 400 and "password" in response.get_json()["errors"]


@pytest.mark.parametrize("value", ["1_0", "\u0661", " 5 ", "5.0", "+5", "0x5"])
def test_numbers_are_plain_ascii_digits(api, value):
    response = api.post("/api/extensions", json={"number": "1001", "name": "Ann", "max_contacts": value})
    assert response.status_code == 400 and "max_contacts" in response.get_json()["errors"]


def test_a_number_given_as_digits_in_a_string_is_accepted(api):
    response = api.post("/api/extensions", json={"number": "1001", "name": "Ann", "max_contacts": "3"})
    assert response.status_code == 201 and response.get_json()["max_contacts"] == 3


def test_unknown_fields_of_a_members_list_are_refused(api, two_groups, rows):
    before = rows("asterisk_queue_members")
    response = api.put(f"/api/groups/{two_groups['sales']}/members", json={"members": [], "mebers": []})
    assert response.status_code == 400 and "mebers" in response.get_json()["errors"]
    assert rows("asterisk_queue_members") == before


# --- the realtime writer's own check: the one place every value passes ----------------------------------


@pytest.mark.parametrize("value", ["a;b", "a^3Bb", "a^22", "x\u202ey", "x\ny", "x\x00y"])
def test_the_realtime_writer_refuses_a_value_asterisk_would_misread(value):
    with pytest.raises(v.ValidationError) as refused:
        check_values("ps_endpoints", [{"id": "1001", "callerid": value}])
    assert "ps_endpoints.callerid" in refused.value.errors


def test_the_realtime_writer_refuses_a_value_wider_than_its_column():
    with pytest.raises(v.ValidationError) as refused:
        check_values("ps_endpoint_id_ips", [{"id": "t-1", "endpoint": "t", "match": "x" * 81}])
    assert "ps_endpoint_id_ips.match" in refused.value.errors


def test_values_split_across_columns_do_not_make_an_escape():
    check_values("ps_endpoints", [{"id": "1001", "context": "a^", "callerid": "3B"}])


def test_the_invisible_character_class_is_unicodes_own():
    """The class is written out for speed; it must be exactly categories Cc, Cf, Zl, Zp and Cs."""
    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    mismatched = [hex(cp) for cp in range(sys.maxunicode + 1)
                  if (unicodedata.category(chr(cp)) in wanted) != bool(v.INVISIBLE_CHARS.fullmatch(chr(cp)))]
    assert mismatched == []


# --- requests that used to answer 500 -----------------------------------------------------------------


def test_a_nul_byte_in_a_path_is_not_found(api):
    response = api.get("/api/extensions/%00")
    assert response.status_code == 404
    assert response.get_json() == {"errors": {"_": response.get_json()["errors"]["_"]}}


def test_a_nul_byte_in_a_query_names_the_parameter(api):
    response = api.get("/api/extensions?q=%00")
    assert response.status_code == 400 and "q" in response.get_json()["errors"]


@pytest.mark.parametrize("body,field", [
    ({"number": "1001", "name": "Ann", "email": "a\u0000b@example.com"}, "email"),
    ({"number": "1001", "name": "Ann\u0000"}, "name"),
])
def test_a_nul_byte_in_a_body_field_names_the_field(api, realtime_counts, body, field):
    before = realtime_counts()
    response = api.post("/api/extensions", json=body)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert realtime_counts() == before


def test_a_lone_surrogate_in_a_body_names_the_field(api):
    raw = '{"number": "1001", "name": "Ann \\ud800"}'
    response = api.post("/api/extensions", data=raw, content_type="application/json")
    assert response.status_code == 400 and "name" in response.get_json()["errors"]


def test_a_nul_byte_in_the_login_form_is_refused(client):
    response = client.post("/login", data={"username": "a\x00b", "password": "x"})
    assert response.status_code == 400


def test_json_nested_a_thousand_deep_is_a_400(api):
    raw = "[" * 1000 + "]" * 1000
    response = api.post("/api/extensions", data=raw, content_type="application/json")
    assert response.status_code == 400


def test_json_nested_past_the_limit_is_a_400(api):
    body = {"number": "1001", "name": "Ann"}
    nested = body
    for _ in range(30):
        nested["x"] = {}
        nested = nested["x"]
    response = api.post("/api/extensions", json=body)
    assert response.status_code == 400


@pytest.mark.parametrize("url,body,field", [
    ("/api/extensions", {"number": "1001", "name": "Ann", "email": "a" * 250 + "@example.com"}, "email"),
    ("/api/trunks", trunk(host="a" * 60 + "." + "b" * 60 + "." + "c" * 60 + "." + "d" * 60 + ".net"), "host"),
    ("/api/trunks", trunk(username="u" * 41, password="Secret-Passw0rd!"), "username"),
])
def test_a_value_longer_than_its_column_names_the_field(api, realtime_counts, url, body, field):
    before = realtime_counts()
    response = api.post(url, json=body)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert realtime_counts() == before


def test_a_user_name_longer_than_its_column_is_refused_before_the_database(db):
    from pbxweb.auth.service import create_user

    with pytest.raises(v.ValidationError) as refused:
        create_user("u" * 81, "agent")
    assert "username" in refused.value.errors


def test_model_widths_come_from_the_schema(app, db):
    """The width check reads the column types: a model value over its column is refused by name."""
    from pbxweb.models import Trunk

    db.session.add(Trunk(name="t" * 41, host="h", codecs="ulaw"))
    with pytest.raises(v.ValidationError) as refused:
        db.session.flush()
    db.session.rollback()
    assert refused.value.errors == {"name": "must be at most 40 characters"}


@pytest.mark.parametrize("kwargs", [
    {"json": ["a"]}, {"json": 42}, {"data": "x", "content_type": "text/plain"},
    {"data": {"password": "x"}}, {"json": {"pasword": "x"}},
])
def test_only_an_empty_body_generates_a_new_sip_password(api, rows, kwargs):
    api.post("/api/extensions", json={"number": "1001", "name": "Ann"})
    before = rows("ps_auths")[0]["password"]
    response = api.post("/api/extensions/1001/password", **kwargs)
    assert response.status_code == 400
    assert rows("ps_auths")[0]["password"] == before


@pytest.mark.parametrize("kwargs", [{}, {"json": {}}])
def test_no_body_or_an_empty_object_generates_a_new_sip_password(api, rows, kwargs):
    api.post("/api/extensions", json={"number": "1001", "name": "Ann"})
    before = rows("ps_auths")[0]["password"]
    response = api.post("/api/extensions/1001/password", **kwargs)
    assert response.status_code == 200
    assert rows("ps_auths")[0]["password"] == response.get_json()["password"] != before


@pytest.mark.parametrize("method,url,headers,status", [
    ("get", "/api/extensions", {"Authorization": ""}, 401),
    ("post", "/api/extensions", {}, 403),
    ("get", "/api/nothing-here", {}, 404),
    ("put", "/api/extensions", {}, 405),
])
def test_every_api_error_has_one_shape(client, method, url, headers, status):
    from .conftest import token_for

    token = token_for("manager")
    response = getattr(client, method)(url, headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"errors"} and isinstance(body["errors"]["_"], str) and body["errors"]["_"]


def test_an_unknown_page_is_an_html_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert re.search(r"<h1>Not found</h1>", response.get_data(as_text=True))
