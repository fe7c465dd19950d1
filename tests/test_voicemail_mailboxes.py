"""Voicemail in Asterisk's realtime `voicemail` table: a mailbox for every active extension with voicemail
on, the moment it commits; its PIN generated, shown once, reset on request, and kept only where Asterisk
reads it."""

import sqlalchemy as sa

from pbxweb.realtime.schema import TABLES

from .test_pages import admin  # noqa: F401 — the signed-in admin's browser


def create(api, **fields):
    return api.post("/api/extensions", json={"number": "1001", "name": "John Doe", **fields})


def mailboxes(rows):
    return [{k: v for k, v in r.items() if k != "uniqueid"} for r in rows("voicemail")]


def test_an_extension_with_voicemail_gets_a_mailbox_with_the_pin_shown_once(api, rows):
    body = create(api, voicemail=True, email="john@example.com").get_json()
    pin = body["voicemail_pin"]
    assert pin.isdigit() and len(pin) >= 6
    assert mailboxes(rows) == [{"context": "default", "mailbox": "1001", "password": pin, "fullname": "John Doe",
                                "email": "john@example.com", "attach": "yes"}]
    assert pin not in str(api.get("/api/extensions/1001").get_json())
    assert pin not in str(api.get("/api/extensions").get_json())


def test_the_phone_is_told_of_messages_through_the_endpoint_and_the_aor(api, rows):
    create(api, voicemail=True)
    assert rows("ps_endpoints")[0]["mailboxes"] == rows("ps_aors")[0]["mailboxes"] == "1001@default"


def test_without_an_email_address_nothing_is_attached(api, rows):
    create(api, voicemail=True)
    assert mailboxes(rows)[0]["attach"] == "no" and "email" not in mailboxes(rows)[0]


def test_the_pin_is_not_kept_by_mini_pbx(api, db):
    pin = create(api, voicemail=True).get_json()["voicemail_pin"]
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name == "voicemail":
                continue
            for row in conn.execute(sa.select(table)):
                assert pin not in repr(tuple(row)), table.name


def test_no_voicemail_no_mailbox_and_no_pin(api, rows):
    body = create(api).get_json()
    assert "voicemail_pin" not in body and rows("voicemail") == []


def test_turning_voicemail_on_makes_the_mailbox_and_shows_its_pin_off_removes_it(api, rows):
    create(api)
    on = api.patch("/api/extensions/1001", json={"voicemail": True}).get_json()
    assert mailboxes(rows)[0]["password"] == on["voicemail_pin"]
    again = api.patch("/api/extensions/1001", json={"name": "Jane Roe"}).get_json()
    assert "voicemail_pin" not in again and mailboxes(rows)[0]["fullname"] == "Jane Roe"
    assert mailboxes(rows)[0]["password"] == on["voicemail_pin"]
    api.patch("/api/extensions/1001", json={"voicemail": False})
    assert rows("voicemail") == [] and "mailboxes" not in rows("ps_aors")[0]


def test_a_deactivated_extension_has_no_mailbox(api, rows):
    create(api, voicemail=True)
    api.patch("/api/extensions/1001", json={"is_active": False})
    assert rows("voicemail") == []
    back = api.patch("/api/extensions/1001", json={"is_active": True}).get_json()
    assert mailboxes(rows)[0]["password"] == back["voicemail_pin"]


def test_a_pin_reset_gives_a_new_pin_once(api, rows):
    first = create(api, voicemail=True).get_json()["voicemail_pin"]
    response = api.post("/api/extensions/1001/voicemail-pin")
    assert response.status_code == 200
    pin = response.get_json()["voicemail_pin"]
    assert pin != first and mailboxes(rows)[0]["password"] == pin


def test_a_pin_reset_without_voicemail_is_refused_naming_the_field(api, rows):
    create(api)
    response = api.post("/api/extensions/1001/voicemail-pin")
    assert response.status_code == 409 and "voicemail" in response.get_json()["errors"]
    assert rows("voicemail") == []
    assert api.post("/api/extensions/1001/voicemail-pin", json={"pin": "123456"}).status_code == 400


def test_renaming_the_number_moves_the_mailbox_and_keeps_its_pin(api, rows):
    pin = create(api, voicemail=True).get_json()["voicemail_pin"]
    api.patch("/api/extensions/1001", json={"number": "1005"})
    assert [(m["mailbox"], m["password"]) for m in mailboxes(rows)] == [("1005", pin)]


def test_a_pin_the_owner_changed_from_the_phone_is_kept_by_saves_and_sync(api, rows, db, runner):
    create(api, voicemail=True)
    voicemail = TABLES["voicemail"]
    with db.engine.begin() as conn:
        conn.execute(sa.update(voicemail).values(password="24680135", saycid="yes"))
    api.patch("/api/extensions/1001", json={"name": "Jane Roe"})
    assert runner.invoke(args=["pbx", "sync"]).exit_code == 0
    row = mailboxes(rows)[0]
    assert (row["password"], row["saycid"], row["fullname"]) == ("24680135", "yes", "Jane Roe")


def test_sync_restores_a_deleted_mailbox_with_a_pin_nobody_knows(api, rows, db, runner):
    pin = create(api, voicemail=True).get_json()["voicemail_pin"]
    with db.engine.begin() as conn:
        conn.execute(sa.delete(TABLES["voicemail"]))
    assert runner.invoke(args=["pbx", "sync"]).exit_code == 0
    restored = mailboxes(rows)
    assert [m["mailbox"] for m in restored] == ["1001"] and restored[0]["password"] != pin
    assert restored[0]["password"].isdigit()


def test_the_page_shows_the_pin_once_when_voicemail_is_turned_on(admin, api):
    create(api)
    client = admin
    page = client.post("/extensions/1001", data={"number": "1001", "name": "John Doe", "voicemail": "on", "is_active": "on",
                                                 "codecs": "ulaw", "context": "from-internal", "max_contacts": "1"},
                       headers={"HX-Request": "true"})
    assert page.status_code == 200 and "Voicemail PIN" in page.text and "You will not see it again" in page.text
    reset = client.post("/extensions/1001/voicemail-pin", headers={"HX-Request": "true"})
    assert reset.status_code == 200 and "New voicemail PIN for 1001" in reset.text


def test_a_new_pin_is_in_the_audit_log_without_its_value(api, db):
    from pbxweb.models import AuditEntry

    pin = create(api, voicemail=True).get_json()["voicemail_pin"]
    api.post("/api/extensions/1001/voicemail-pin")
    entries = [e.changes for e in db.session.query(AuditEntry).filter_by(object_key="1001")]
    assert entries.count({"voicemail PIN": "changed"}) == 2 and pin not in repr(entries)
