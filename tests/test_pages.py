"""The admin pages without a browser: the same rules as the API with errors under their fields, the audit log,
CSV import and export, and what each role sees inside a page."""

import html
import io

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_user
from pbxweb.models import AuditEntry

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


def test_a_created_extension_shows_its_password_once_and_its_row(admin, rows):
    page = new_extension(admin).get_data(as_text=True)
    password = rows("ps_auths")[0]["password"]
    assert f'value="{password}"' in page and "You will not see it again" in page
    assert 'hx-swap-oob="afterbegin:#extension-rows"' in page and 'id="ext-1001"' in page
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
    assert ("user:alice", "update", "group", "Sales", {"member 1001": ["member", "removed"]}) in entries[-2:]
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
    content = preview.get_data(as_text=True).split('name="content" value="')[1].split('"')[0]
    applied = admin.post("/extensions/import", data={"content": content, "apply": "1"})
    assert applied.status_code == 302
    assert [r["id"] for r in rows("ps_endpoints")] == ["2001", "2002"]
    assert rows("ps_endpoints")[0]["callerid"] == '"Zoë Ann" <2001>' and rows("ps_endpoints")[0]["allow"] == "ulaw,alaw"


@pytest.mark.parametrize("content,message", [
    (b"number;name\n2001;Ann\n", "separates its columns with ';'"),
    (b"number,name,shoe_size\n2001,Ann,44\n", "unknown columns: shoe_size"),
    ("number,name\n2001,Zoë\n".encode("latin-1"), "is not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not"),
    (b"name\nAnn\n", "lacks the column number"),
    (b"", "is missing"),
])
def test_a_file_that_is_no_csv_of_extensions_is_a_clear_error(admin, content, message):
    response = upload(admin, content)
    assert response.status_code == 400 and message in html.unescape(response.get_data(as_text=True))


def test_ten_megabytes_of_junk_is_refused_at_the_door(admin):
    response = upload(admin, b"x" * (10 * 1024 * 1024))
    assert response.status_code == 413 and "larger than 8 MB" in response.get_data(as_text=True)


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
