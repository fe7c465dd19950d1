"""The admin pages without a browser: the same rules as the API with errors under their fields, the audit log,
CSV import and export, and what each role sees inside a page."""

import html
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from pbxweb import sealed
from pbxweb.auth.service import create_user
from pbxweb.models import AuditEntry, SealedData, utcnow

from .test_access import signed_in

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(app, db):
    user, _ = create_user("alice", "admin", "correct horse battery")
    db.session.execute(sa.delete(AuditEntry))  # the fixture's own account is not what a test looks at
    db.session.commit()
    return signed_in(app, user)


def new_extension(browser, **fields):
    form = {"number": "1001", "name": "Ann Example", "is_active": "on", **fields}
    return browser.post("/extensions", data=form, headers=HX)


def test_a_bad_number_is_shown_under_its_field_and_nothing_is_written(admin, realtime_counts):
    before = realtime_counts()
    response = new_extension(admin, number="01")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="e-number"' in page and "must not start with 0" in page and 'aria-invalid="true"' in page
    assert realtime_counts() == before


def test_a_name_that_breaks_the_caller_id_is_refused_as_by_the_api(admin):
    response = new_extension(admin, name='Ann "the boss"')
    assert response.status_code == 400 and 'id="e-name"' in response.get_data(as_text=True)


def response_listing_reloads(response) -> bool:
    return response.headers.get("HX-Trigger") == "listingChanged"


def test_a_created_extension_shows_its_password_once_and_its_row(admin, rows):
    page = new_extension(admin).get_data(as_text=True)
    password = rows("ps_auths")[0]["password"]
    assert f'value="{password}"' in page and "You will not see it again" in page
    assert response_listing_reloads(admin.post("/extensions", data={"number": "1002", "name": "Bo"}, headers=HX))
    assert password not in admin.get("/extensions").get_data(as_text=True)


def test_an_edit_replaces_the_row_and_closes_the_dialog(admin, rows):
    new_extension(admin)
    response = admin.post("/extensions/1001", data={"number": "1002", "name": "Ann B", "is_active": "on"}, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Trigger-After-Swap"] == "closePanel"
    assert 'hx-swap-oob="outerHTML:#ext-1001"' in response.get_data(as_text=True)
    assert [r["id"] for r in rows("ps_endpoints")] == ["1002"]


def test_the_list_answers_htmx_with_the_table_alone(admin):
    new_extension(admin)
    fragment = admin.get("/extensions?q=ann", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True) and "ext-1001" in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    assert "<html" in admin.get("/extensions?q=ann").get_data(as_text=True)


def test_every_change_is_audited_with_who_what_and_old_and_new(admin, api, runner, db):
    db.session.execute(sa.delete(AuditEntry))  # the fixtures' accounts
    db.session.commit()
    new_extension(admin)
    admin.post("/extensions/1001", data={"number": "1001", "name": "Ann B", "is_active": "on"}, headers=HX)
    admin.post("/extensions/1001/password", headers=HX)
    api.post("/api/groups", json={"name": "Sales", "members": [{"number": "1001"}]})
    runner.invoke(args=["pbx", "create-user", "bob", "--role", "agent"])
    admin.post("/extensions/1001/delete", headers=HX)
    entries = [(e.actor, e.action, e.object_type, e.object_key, e.changes)
               for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]
    assert entries[0][:4] == ("user:alice", "create", "extension", "1001") and entries[0][4]["SIP password"] == "set"
    assert entries[1] == ("user:alice", "update", "extension", "1001", {"name": ["Ann Example", "Ann B"]})
    assert entries[2] == ("user:alice", "update", "extension", "1001", {"SIP password": "changed"})
    assert ("token:admin-user", "create", "group", "Sales") in [e[:4] for e in entries]
    assert any(e[:4] == ("token:admin-user", "update", "group", "Sales") and "member 1001" in e[4] for e in entries)
    assert ("cli", "create", "user", "bob") in [e[:4] for e in entries]
    assert ("user:alice", "delete", "extension", "1001") in [e[:4] for e in entries[-2:]]
    assert ("user:alice", "update", "group", "Sales", {"member 1001": "removed"}) in entries[-2:]
    bob = next(e for e in entries if e[2:4] == ("user", "bob"))
    assert bob[4]["password"] == "set" and "password_hash" not in bob[4]
    assert not any(isinstance(c, list) and any(str(v).startswith(("scrypt:", "pbkdf2:")) for v in c)
                   for e in entries for c in e[4].values())


def test_a_refused_change_leaves_no_audit_entry(admin, db):
    new_extension(admin, number="01")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_the_audit_log_filters_by_user_type_and_date(admin, api):
    new_extension(admin)
    api.post("/api/groups", json={"name": "Sales"})
    page = admin.get("/audit?type=group", headers=HX).get_data(as_text=True)
    assert "Sales" in page and "Ann Example" not in page
    by_user = admin.get("/audit?actor=alice", headers=HX).get_data(as_text=True)
    assert "1001" in by_user and "Sales" not in by_user
    assert "No changes match" in admin.get("/audit?from=2000-01-01&to=2000-01-02", headers=HX).get_data(as_text=True)
    assert admin.get("/audit?from=yesterday").status_code == 400


def test_an_agent_sees_only_its_own_groups(app, api, two_groups):
    user, _ = create_user("agent1003", "agent", "correct horse battery", "1003")
    browser = signed_in(app, user)
    page = browser.get("/groups").get_data(as_text=True)
    assert "Support" in page and "Sales" not in page
    assert browser.get(f"/groups/{two_groups['sales']}").status_code == 404
    assert "Add a member" not in browser.get(f"/groups/{two_groups['support']}").get_data(as_text=True)


def test_the_groups_list_is_paged_by_name_and_searchable(admin, db):
    from pbxweb.models import ExtensionGroup

    db.session.add_all(ExtensionGroup(name=f"Team {n:03d}", ring_strategy="ringall", ring_timeout=20, musicclass="default",
                                      max_wait=300, is_active=True) for n in range(1, 61))
    db.session.commit()
    first = admin.get("/groups").get_data(as_text=True)
    assert "60 groups" in first and "Team 050" in first and "Team 051" not in first
    cursor = re.search(r'href="/groups\?cursor=([^"&]+)"', first).group(1)
    second = admin.get(f"/groups?cursor={cursor}", headers=HX).get_data(as_text=True)
    assert "Team 051" in second and "Team 060" in second and "Team 050" not in second
    found = admin.get("/groups?q=team+05", headers=HX).get_data(as_text=True)
    assert "10 groups matching" in found and "Team 059" in found and "Team 060" not in found


def test_members_are_added_reordered_and_penalised_in_place(admin, api, rows):
    for number in ("1001", "1002"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    group = api.post("/api/groups", json={"name": "Sales", "ring_strategy": "hunt"}).get_json()["id"]
    admin.post(f"/groups/{group}/members", data={"number": "1001"}, headers=HX)
    admin.post(f"/groups/{group}/members", data={"number": "1002"}, headers=HX)
    admin.post(f"/groups/{group}/members/1002/move", data={"direction": "up"}, headers=HX)
    response = admin.post(f"/groups/{group}/members/1001/penalty", data={"penalty": "5"}, headers=HX)
    assert response.status_code == 200
    members = api.get(f"/api/groups/{group}").get_json()["members"]
    assert [(m["number"], m["penalty"]) for m in members] == [("1002", 0), ("1001", 5)]
    assert {r["interface"]: r["penalty"] for r in rows("asterisk_queue_members")} == {"PJSIP/1001": 5, "PJSIP/1002": 0}
    bad = admin.post(f"/groups/{group}/members/1001/penalty", data={"penalty": "-1"}, headers=HX)
    assert bad.status_code == 400 and "between 0 and 1000" in bad.get_data(as_text=True)


# --- CSV ------------------------------------------------------------------------------------------------


def upload(browser, content: bytes):
    return browser.post("/extensions/import", data={"file": (io.BytesIO(content), "extensions.csv")},
                        content_type="multipart/form-data")


class _Forms(HTMLParser):
    """Each form of a page: its action, hidden fields and buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._button = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "hidden": {}, "buttons": []})
        elif tag == "input" and attrs.get("type") == "hidden" and self.forms:
            self.forms[-1]["hidden"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button" and self.forms:
            self._button = {"name": attrs.get("name"), "value": attrs.get("value", ""), "text": ""}
            self.forms[-1]["buttons"].append(self._button)

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = None


def submit(browser, page, button: str, url: str = "/extensions/import"):
    """Press the button whose text starts with `button` on `page`, as a browser would: its form's hidden
    fields and the button's own name and value, posted to the form's action."""
    forms = _Forms()
    forms.feed(page.get_data(as_text=True))
    form, pressed = next((f, b) for f in forms.forms for b in f["buttons"] if b["text"].strip().startswith(button))
    data = dict(form["hidden"])
    if pressed["name"]:
        data[pressed["name"]] = pressed["value"]
    return browser.post(form["action"] or url, data=data)


def test_a_csv_with_one_bad_row_lists_it_and_writes_nothing(admin, realtime_counts, db):
    before = realtime_counts()
    csv = b"number,name,email\n2001,Ann,ann@example.com\n2002,Bob,not-an-email\n2003,Cy,\n"
    response = upload(admin, csv)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "nothing was imported" in page
    assert "<td class=\"num\">3</td><td>email</td>" in page
    assert realtime_counts() == before


def test_a_good_csv_is_previewed_then_imported_with_its_realtime_rows(admin, rows):
    csv = "\ufeffnumber,name,codecs,voicemail\n2001,Zoë Ann,\"ulaw,alaw\",yes\n2002,Bob,,no\n".encode()
    preview = upload(admin, csv)
    assert preview.status_code == 200 and "Import 2 extensions" in preview.get_data(as_text=True)
    assert rows("ps_endpoints") == []
    applied = submit(admin, preview, "Import")
    assert applied.status_code == 200 and "Imported 2 extensions." in applied.get_data(as_text=True)
    assert [r["id"] for r in rows("ps_endpoints")] == ["2001", "2002"]
    assert rows("ps_endpoints")[0]["callerid"] == '"Zoë Ann" <2001>' and rows("ps_endpoints")[0]["allow"] == "ulaw,alaw"


@pytest.mark.parametrize("content,message", [
    (b"number;name\n2001;Ann\n", "separates its columns with ';'"),
    (b"number,name,shoe_size\n2001,Ann,44\n", "unknown columns: shoe_size"),
    ("number,name\n2001,Zoë\n".encode("latin-1"), "is not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not"),
    (b"name\nAnn\n", "lacks the column number"),
    (b"number,name\n", "has no rows under its header"),
    (b"", "is missing"),
])
def test_a_file_that_is_no_csv_of_extensions_is_a_clear_error(admin, content, message):
    response = upload(admin, content)
    assert response.status_code == 400 and message in html.unescape(response.get_data(as_text=True))


def test_ten_megabytes_of_junk_is_refused_at_the_door(admin):
    response = upload(admin, b"x" * (10 * 1024 * 1024))
    assert response.status_code == 413 and "larger than 8 MB" in response.get_data(as_text=True)


def test_a_csv_with_cr_only_line_ends_is_read_by_the_page_and_the_cli(admin, runner, tmp_path, rows):
    preview = upload(admin, b"number,name\r2001,Ann\r2002,Bob\r")
    assert preview.status_code == 200 and "All 2 rows are valid" in preview.get_data(as_text=True)
    mac = tmp_path / "mac.csv"
    mac.write_bytes(b"number,name\r3001,Cy\r3002,Dee\r")
    done = runner.invoke(args=["pbx", "import-extensions", str(mac)])
    assert done.exit_code == 0 and "Imported 2" in done.output
    assert [r["id"] for r in rows("ps_endpoints")] == ["3001", "3002"]


def test_a_file_the_csv_reader_refuses_from_its_header_on_is_a_clear_error_on_the_page_and_in_the_cli(
        admin, runner, tmp_path, realtime_counts):
    before = realtime_counts()
    # A header cell past the csv module's field limit: the reader refuses the very first line.
    content = b"number,name," + b"x" * 200_000 + b"\n2001,Ann,\n"
    response = upload(admin, content)
    assert response.status_code == 400 and "is not valid CSV at line 1" in response.get_data(as_text=True)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    refused = runner.invoke(args=["pbx", "import-extensions", str(bad)])
    assert isinstance(refused.exception, SystemExit) and refused.exit_code == 1
    assert "error: file: is not valid CSV at line 1" in refused.output
    assert realtime_counts() == before


def test_a_file_that_previews_is_imported_whatever_its_size(admin, rows):
    # 7 MB: cells padded with spaces, which the import strips.
    content = ("number,name,email\n" + "".join(f"{2000 + i},Phone {i},{' ' * 7000}\n" for i in range(1000))).encode()
    assert 7_000_000 < len(content) < 8 * 1024 * 1024
    preview = upload(admin, content)
    assert preview.status_code == 200 and "All 1000 rows are valid" in preview.get_data(as_text=True)
    applied = submit(admin, preview, "Import")
    assert applied.status_code == 200 and "Imported 1000 extensions." in applied.get_data(as_text=True)
    assert len(rows("ps_endpoints")) == 1000


def test_a_preview_is_imported_once(admin, rows):
    preview = upload(admin, b"number,name\n2001,Ann\n")
    assert submit(admin, preview, "Import").status_code == 200
    again = submit(admin, preview, "Import")
    assert again.status_code == 410 and "upload it again" in again.get_data(as_text=True)
    assert [r["id"] for r in rows("ps_endpoints")] == ["2001"]


@pytest.fixture
def imported(admin):
    """The result page of an import from the page: three rows, the first two without a password."""
    preview = upload(admin, b"number,name,password\n2001,=Ann,\n2002,Bob,\n2003,Cy,Given-Passw0rd-123\n")
    return submit(admin, preview, "Import")


def test_an_import_offers_its_generated_passwords_once_as_a_spreadsheet_safe_csv(admin, imported, rows):
    page = html.unescape(imported.get_data(as_text=True))
    assert "2 of them got a generated SIP password" in page and "the download works once, within the next hour" in page
    download = submit(admin, imported, "Download")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith("attachment")
    passwords = {r["id"]: r["password"] for r in rows("ps_auths")}
    assert download.get_data(as_text=True).splitlines() == [
        "number,name,password", f"2001,'=Ann,{passwords['2001']}", f"2002,Bob,{passwords['2002']}"]
    again = submit(admin, imported, "Download")
    assert again.status_code == 410 and "downloaded already" in html.unescape(again.get_data(as_text=True))


def test_the_generated_passwords_expire_an_hour_after_the_import(admin, imported, monkeypatch, db):
    an_hour_later = utcnow() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(sealed, "utcnow", lambda: an_hour_later)
    assert submit(admin, imported, "Download").status_code == 410
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SealedData)) == 0


def test_only_the_admin_who_imported_downloads_the_generated_passwords(app, admin, imported):
    token = imported.get_data(as_text=True).split('name="token" value="')[1].split('"')[0]
    for role in ("manager", "admin"):
        user, _ = create_user(f"other-{role}", role, "correct horse battery")
        other = signed_in(app, user)
        refused = other.post("/extensions/import/passwords", data={"token": token})
        assert refused.status_code == (403 if role == "manager" else 410), role
    assert submit(admin, imported, "Download").status_code == 200


def test_the_generated_passwords_are_never_stored_in_the_clear(admin, imported, db, rows):
    key = imported.get_data(as_text=True).split('name="token" value="')[1].split('"')[0].split(".")[1]
    passwords = [r["password"] for r in rows("ps_auths") if r["id"] in ("2001", "2002")]
    with db.engine.connect() as conn:
        (ciphertext,) = conn.execute(sa.select(SealedData.ciphertext)).scalars().all()
        everything = [str(row) for t in db.metadata.sorted_tables for row in conn.execute(sa.select(t))]
    assert not any(p.encode() in ciphertext for p in passwords) and b"number,name" not in ciphertext
    assert not any(key in row for row in everything)  # the key is only in the admin's page


def test_a_download_of_generated_passwords_is_in_the_audit_log(admin, imported, db):
    submit(admin, imported, "Download")
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "download")).one()
    assert (entry.actor, entry.object_type, entry.changes) == ("user:alice", "SIP passwords", {"extensions": "2001, 2002"})
    assert "download SIP passwords" in admin.get("/audit").get_data(as_text=True)


def test_duplicates_within_the_file_and_existing_numbers_are_named(admin, api):
    api.post("/api/extensions", json={"number": "2001", "name": "Ann"})
    response = upload(admin, b"number,name\n2001,Ann again\n2002,Bob\n2002,Bob twice\n")
    page = response.get_data(as_text=True)
    assert "extension 2001 already exists" in page and "2002 is also on line 3" in page


def test_the_export_escapes_cells_a_spreadsheet_would_run(admin, api):
    api.post("/api/extensions", json={"number": "2001", "name": "=cmd|' /C calc'!A0"})
    api.post("/api/extensions", json={"number": "2002", "name": "+Bob, the boss"})
    csv = admin.get("/extensions/export.csv").get_data(as_text=True)
    assert csv.splitlines()[0] == "number,name,email,voicemail,codecs,context,max_contacts,is_active"
    assert "2001,'=cmd|' /C calc'!A0," in csv
    assert '2002,"\'+Bob, the boss",' in csv
    assert "password" not in csv.splitlines()[0]

def test_an_export_after_an_edit_says_the_new_values_not_the_last_exports(admin, api):
    api.post("/api/extensions", json={"number": "2001", "name": "Ann", "voicemail": True})
    assert "2001,Ann," in admin.get("/extensions/export.csv").get_data(as_text=True)
    api.patch("/api/extensions/2001", json={"name": "Ann Smith", "voicemail": False})
    csv = admin.get("/extensions/export.csv").get_data(as_text=True)
    assert "2001,Ann Smith," in csv and "2001,Ann," not in csv
    assert csv.splitlines()[1].split(",")[3] == "no"



def test_the_export_round_trips_through_the_import(admin, api, db):
    for number, name in (("2001", "=Sum"), ("2002", "Bob")):
        api.post("/api/extensions", json={"number": number, "name": name})
    exported = admin.get("/extensions/export.csv?passwords=1").get_data()
    for number in ("2001", "2002"):
        api.delete(f"/api/extensions/{number}")
    preview = upload(admin, exported)
    assert preview.status_code == 200, preview.get_data(as_text=True)


def test_only_an_admin_exports_passwords(app, api):
    user, _ = create_user("mgr", "manager", "correct horse battery")
    browser = signed_in(app, user)
    assert browser.get("/extensions/export.csv").status_code == 200
    assert browser.get("/extensions/export.csv?passwords=1").status_code == 403


def test_an_export_with_passwords_is_in_the_audit_log_from_the_page_and_the_cli(admin, api, db, runner):
    for number in ("2001", "2002"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    db.session.execute(sa.delete(AuditEntry))
    db.session.commit()
    admin.get("/extensions/export.csv")
    assert _audit(db) == []  # without the passwords, nothing secret left
    admin.get("/extensions/export.csv?passwords=1")
    runner.invoke(args=["pbx", "export-extensions", "--passwords"])
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.actor, e.action, e.object_type, e.changes) for e in entries] == [
        ("user:alice", "download", "SIP passwords", {"every extension": "(2)"}),
        ("cli", "download", "SIP passwords", {"every extension": "(2)"})]
    page = admin.get("/extensions").get_data(as_text=True)
    assert 'data-confirm="Download every extension' in page and "passwords=1" in page


def test_the_cli_imports_all_or_nothing_and_exports(runner, tmp_path, rows):
    good = tmp_path / "good.csv"
    good.write_text("number,name\n3001,Ann\n3002,Bob\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("number,name\n3003,Cy\n0304,Dee\n")
    refused = runner.invoke(args=["pbx", "import-extensions", str(bad)])
    assert refused.exit_code == 1 and "line 3: number:" in refused.output and rows("ps_endpoints") == []
    dry = runner.invoke(args=["pbx", "import-extensions", "--dry-run", str(good)])
    assert dry.exit_code == 0 and "nothing was written" in dry.output and rows("ps_endpoints") == []
    done = runner.invoke(args=["pbx", "import-extensions", str(good)])
    assert done.exit_code == 0 and "Imported 2" in done.output
    assert [r["id"] for r in rows("ps_endpoints")] == ["3001", "3002"]
    exported = runner.invoke(args=["pbx", "export-extensions"])
    assert exported.output.splitlines()[1].startswith("3001,Ann,")


def _audit(db) -> list[tuple]:
    return [(e.action, e.object_type, e.object_key, e.changes)
            for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_each_member_added_or_removed_is_its_own_audit_entry(admin, api, db):
    for number in ("2101", "2002", "2003", "2004"):
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    group = api.post("/api/groups", json={"name": "Support", "ring_strategy": "hunt", "members": [
        {"number": "2101"}, {"number": "2002"}, {"number": "2003"}]}).get_json()["id"]
    db.session.execute(sa.delete(AuditEntry))
    db.session.commit()
    api.put(f"/api/groups/{group}/members", json={"members": [{"number": "2002"}, {"number": "2101"}]})
    entries = _audit(db)
    assert ("update", "group", "Support", {"member 2003": "removed"}) in entries
    # The order is shown from 1, as on the group's page; one entry for the reordering.
    assert ("update", "group", "Support", {"member 2101 position": [1, 2], "member 2002 position": [2, 1]}) in entries
    assert len(entries) == 2
    db.session.execute(sa.delete(AuditEntry))
    db.session.commit()
    api.put(f"/api/groups/{group}/members", json={"members": [
        {"number": "2002"}, {"number": "2101"}, {"number": "2003"}, {"number": "2004", "penalty": 2}]})
    assert sorted((e[3] for e in _audit(db)), key=str) == [{"member 2003": [None, "added (penalty 0)"]},
                                                 {"member 2004": [None, "added (penalty 2)"]}]


def test_the_audit_log_says_fields_in_words_in_the_site_time_zone(admin, app, db):
    app.config["PBX_TIMEZONE"] = "Europe/Amsterdam"
    new_extension(admin)
    admin.post("/extensions/1001", data={"number": "1001", "name": "Ann Example"}, headers=HX)  # active off
    entry = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    page = admin.get("/audit", headers=HX).get_data(as_text=True)
    assert "Active: yes → no" in page and "is_active" not in page
    local = entry.at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    assert local.strftime("%Y-%m-%d %H:%M") in page and "UTC" not in page


def test_an_empty_value_in_the_audit_log_reads_as_a_dash():
    from pbxweb.audit import describe

    assert describe({"match": [None, ""], "description": ["Main line", ""]}) == ["Calls from: —", "Description: Main line → —"]


def test_ring_strategies_are_named_as_people_say_them_with_asterisks_name_as_a_hint(admin, api):
    group = api.post("/api/groups", json={"name": "Support", "ring_strategy": "hunt"}).get_json()["id"]
    listing = admin.get("/groups").get_data(as_text=True)
    assert "In order (hunt)" in listing and "Asterisk: linear" in listing
    assert ">hunt<" not in listing
    form = admin.get("/groups/new").get_data(as_text=True)
    for words in ("Ring all", "In order (hunt)", "Round robin with memory", "Least recent", "Fewest calls", "Random"):
        assert words in form
    assert "In order (hunt)" in admin.get(f"/groups/{group}").get_data(as_text=True)


def test_every_page_names_its_icon_so_browsers_do_not_ask_for_a_missing_favicon(admin, client):
    for page in (admin.get("/extensions"), client.get("/login")):
        icon = re.search(r'<link rel="icon" href="([^"]+)"', page.get_data(as_text=True)).group(1)
        assert client.get(icon).status_code == 200


@pytest.fixture
def smtp(app):
    from .smtp_server import CapturingSmtpServer

    server = CapturingSmtpServer()
    app.config.update(PBX_SMTP_HOST="127.0.0.1", PBX_SMTP_PORT=server.port, PBX_SMTP_STARTTLS=False,
                      PBX_SMTP_FROM="pbx@example.test")
    yield server
    server.stop()


def test_a_created_extension_shows_the_phone_setup_card_with_its_password(admin, app, rows):
    app.config.update(PBX_SIP_PUBLIC_HOST="pbx.example.test", PBX_SIP_PORT=5062)
    page = new_extension(admin).get_data(as_text=True)
    password = rows("ps_auths")[0]["password"]
    for shown in ("pbx.example.test", "5062", "UDP", f'value="{password}"', "Print card"):
        assert shown in page


def test_the_setup_card_names_the_bound_address_or_the_host_the_browser_used(admin, app):
    new_extension(admin)
    app.config.update(PBX_SIP_BIND="0.0.0.0")
    assert "<strong>localhost</strong>" in admin.get("/extensions/1001/phone").get_data(as_text=True)
    from pbxweb.extensions.service import get_extension, phone_setup
    assert phone_setup(get_extension("1001"), "pbx.office.test:8443")["server"] == "pbx.office.test"
    assert phone_setup(get_extension("1001"), "[2001:db8::5]:443")["server"] == "2001:db8::5"
    assert phone_setup(get_extension("1001"), "[2001:db8::5]")["server"] == "2001:db8::5"
    app.config.update(PBX_SIP_BIND="192.0.2.10")
    card = admin.get("/extensions/1001/phone").get_data(as_text=True)
    assert "<strong>192.0.2.10</strong>" in card and "as given when the extension was made" in card


def test_the_edit_dialog_offers_a_new_sip_password_and_the_card(admin, rows):
    new_extension(admin)
    old = rows("ps_auths")[0]["password"]
    form = admin.get("/extensions/1001/edit", headers=HX).get_data(as_text=True)
    assert "New SIP password" in form and "/extensions/1001/phone" in form
    page = admin.post("/extensions/1001/password", headers=HX).get_data(as_text=True)
    new = rows("ps_auths")[0]["password"]
    assert new != old and f'value="{new}"' in page and "SIP server" in page


def test_the_setup_card_is_mailed_to_the_extensions_address_and_audited(admin, smtp, rows, db):
    new_extension(admin, email="ann@example.test")
    password = rows("ps_auths")[0]["password"]
    response = admin.post("/extensions/1001/phone/email", headers=HX)
    assert response.status_code == 200 and "ann@example.test" in response.get_data(as_text=True)
    mail = smtp.messages[-1]
    assert mail["To"] == "ann@example.test" and mail["From"] == "pbx@example.test"
    assert f"Password: {password}" in mail.get_content() and "User name: 1001" in mail.get_content()
    entry = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.actor, entry.action, entry.object_key) == ("user:alice", "mail", "1001")
    assert password not in str(entry.changes)


def test_mailing_a_card_needs_an_address_and_a_mail_server(admin, app, smtp):
    new_extension(admin)
    response = admin.post("/extensions/1001/phone/email", headers=HX)
    assert response.status_code == 400 and "e-mail" in response.get_data(as_text=True)
    admin.post("/extensions/1001", data={"number": "1001", "name": "Ann Example", "email": "ann@example.test", "is_active": "on"}, headers=HX)
    app.config["PBX_SMTP_HOST"] = None
    response = admin.post("/extensions/1001/phone/email", headers=HX)
    assert response.status_code == 503 and "PBX_SMTP_HOST" in response.get_data(as_text=True)
    assert smtp.messages == []


def test_a_refused_trunk_save_keeps_the_password_that_was_typed(admin):
    form = {"name": "provider", "host": "not a host!", "port": "5060", "transport": "transport-udp",
            "username": "office", "password": "Typed-Secret-123", "register": "on", "is_active": "on"}
    response = admin.post("/trunks", data=form, headers=HX)
    assert response.status_code == 400 and 'value="Typed-Secret-123"' in response.get_data(as_text=True)
    assert admin.post("/trunks", data={**form, "host": "203.0.113.5"}, headers=HX).status_code == 200
    # The stored password is never put back into a form.
    assert "Typed-Secret-123" not in admin.get("/trunks/1/edit", headers=HX).get_data(as_text=True)


def test_after_a_create_or_delete_the_listing_reloads_with_its_count_and_order(admin, api):
    """The page reloads its listing (count, sort, paging) when the answer says listingChanged."""
    for number in ("1003", "1001"):
        assert response_listing_reloads(new_extension(admin, number=number))
    listing = admin.get("/extensions?sort=number", headers=HX).get_data(as_text=True)
    assert "2 extensions" in listing and listing.index('id="ext-1001"') < listing.index('id="ext-1003"')
    page = admin.get("/extensions").get_data(as_text=True)
    assert 'hx-trigger="listingChanged from:body"' in page
    assert response_listing_reloads(admin.post("/extensions/1003/delete", headers=HX))
    response = admin.post("/dids", data={"number": "5550100", "target": "extension:1001", "is_active": "on"}, headers=HX)
    assert response.status_code == 200 and response_listing_reloads(response)
    assert "1 inbound number" in admin.get("/dids", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="listingChanged from:body"' in admin.get("/dids").get_data(as_text=True)


def test_a_users_own_extension_is_picked_from_the_extensions_matching_what_was_typed(admin, api):
    for number, name in (("2001", "Ann Martin"), ("2002", "Bob Okafor"), ("3001", "Anna Lind")):
        api.post("/api/extensions", json={"number": number, "name": name})
    form = admin.get("/users/new", headers=HX).get_data(as_text=True)
    assert 'list="extension-options"' in form and "/extensions/options" in form
    options = admin.get("/extensions/options?extension=ann", headers=HX).get_data(as_text=True)
    assert '<option value="2001">2001 — Ann Martin</option>' in options and "3001" in options and "2002" not in options
    assert "2002" in admin.get("/extensions/options?extension=200", headers=HX).get_data(as_text=True)


def test_roles_and_the_new_users_password_are_said_in_words(admin, app, db):
    form = admin.get("/users/new", headers=HX).get_data(as_text=True)
    assert "Quality checker (QA)" in form and "Administrator" in form
    created = admin.post("/users", data={"username": "zoe", "role": "qa"}, headers=HX).get_data(as_text=True)
    assert "Quality checker (QA)" in created and "into the phone" not in created


def test_the_preview_lists_the_extensions_it_will_create(admin):
    csv_file = b"number,name,voicemail,password\r\n2001,Ann Martin,yes,\r\n2002,Bob Okafor,no,Own-Secret-Pass-12345\r\n"
    page = admin.post("/extensions/import", data={"file": (io.BytesIO(csv_file), "office.csv")},
                      content_type="multipart/form-data").get_data(as_text=True)
    table = page.split('id="import-preview"')[1].split("</table>")[0]
    assert "Ann Martin" in table and "Bob Okafor" in table and "generated" in table and "from the file" in table
    assert "Own-Secret-Pass" not in page


def test_a_sample_file_imports_as_it_is(admin):
    sample = admin.get("/extensions/import/sample.csv")
    assert sample.mimetype == "text/csv" and "attachment" in sample.headers["Content-Disposition"]
    page = admin.post("/extensions/import", data={"file": (io.BytesIO(sample.data), "sample.csv")},
                      content_type="multipart/form-data")
    assert page.status_code == 200 and "All 2 rows are valid" in page.get_data(as_text=True)


def test_a_bad_yes_no_cell_is_explained_in_the_files_own_words(admin):
    page = admin.post("/extensions/import", data={"file": (io.BytesIO(b"number,name,voicemail\r\n2001,Ann,maybe\r\n"), "a.csv")},
                      content_type="multipart/form-data").get_data(as_text=True)
    assert "must be yes or no" in page


def test_token_times_on_the_users_page_are_in_the_site_time_zone(admin, app, db):
    from pbxweb.auth.service import create_token
    from pbxweb.models import ApiToken

    app.config["PBX_TIMEZONE"] = "Asia/Kolkata"  # UTC+5:30: no clock of the server's shows that half hour
    create_token("alice")
    created = db.session.scalars(sa.select(ApiToken)).one().created_at
    shown = created.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M")
    assert shown in admin.get("/users").get_data(as_text=True)


# --- trunks: the registration as Asterisk last reported it ----------------------------------------------------


def test_the_trunks_page_shows_asterisks_word_and_time_for_the_last_attempt_and_asks_asterisk_for_the_others(
        app, admin, db, ami_server):
    from pbxweb.dids_trunks import service as dids_trunks
    from pbxweb.live import store
    from pbxweb.live.state import LiveState, apply_event

    from .ami_captures import events

    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME=ami_server.username,
                      AMI_SECRET=ami_server.secret, PBX_TIMEZONE="Europe/Amsterdam")
    # The trunks of the lab captures: `silent` (a host that never answers), `provider` (no event seen here).
    dids_trunks.create_trunk({"name": "silent", "host": "127.0.0.4", "port": 41161, "username": "lab-silent",
                              "password": "Lab-Secret-123456x", "register": True})
    dids_trunks.create_trunk({"name": "provider", "host": "127.0.0.3", "port": 60128, "username": "lab-trunk",
                              "password": "Lab-Secret-123456x", "register": True})
    state = LiveState()
    changed = apply_event(state, next(e for e in events("lab-registry-no-response.ami") if e.event == "Registry"))
    with db.engine.begin() as conn:
        store.write_changes(conn, state, changed)
    page = admin.get("/trunks").get_data(as_text=True)
    rows_by_name = {row.split("<strong>")[1].split("<")[0]: row for row in page.split('<tr id="trunk-')[1:]}
    silent, provider = rows_by_name["silent"], rows_by_name["provider"].replace("\n", "")
    # 1796097306 is 2026-12-01 03:55:06 UTC: 04:55 in Amsterdam.
    assert '<span class="state unreachable">Rejected</span>' in silent
    assert '<time class="num" datetime="2026-12-01T03:55:06.458080+00:00" title="2026-12-01 04:55:06">(04:55)</time>' in silent
    assert "refused the registration or did not answer" in silent
    # `provider` has no event yet: Asterisk is asked (PJSIPShowRegistrationsOutbound), which has no time.
    assert '<span class="state registered">Registered</span></td>' in provider
    assert [a.get("Action") for a in ami_server.received if a.get("Action") == "PJSIPShowRegistrationsOutbound"]
