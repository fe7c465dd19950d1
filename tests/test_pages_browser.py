"""The pages in a real browser: Debian's chromium driven by Playwright, against the app on 127.0.0.1."""

import threading

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from pbxweb.auth.service import create_user

from .conftest import DESKTOP, PHONE, console_errors, sign_in
from .test_live_api import site as live_site  # noqa: F401 — a fixture



@pytest.fixture
def live_server(app):
    """The app served on 127.0.0.1 and a free port for the length of one test."""
    app.config["WTF_CSRF_ENABLED"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(browser):
    """A browser tab; the test fails if its console reported an error."""
    context = browser.new_context()
    tab = context.new_page()
    errors = tab.console_errors = console_errors(tab)
    yield tab
    context.close()
    assert errors == [], "the browser console reported errors"


def test_an_admin_logs_in_and_out_in_a_real_browser(app, live_server, page):
    create_user("alice", "admin", "correct horse battery")
    page.goto(f"{live_server}/")
    assert page.url.endswith("/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Waiting callers")
    assert page.evaluate("typeof htmx") == "object"  # the vendored htmx loaded
    page.click("text=Log out")
    page.wait_for_url(f"{live_server}/login")


def test_a_wrong_password_is_refused_in_the_browser(app, live_server, page):
    create_user("alice", "admin", "correct horse battery")
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Unknown user or wrong password."


# --- the admin pages -----------------------------------------------------------------------------------


FIRST_NAMES = ("Ann", "Bob", "Chloé", "Dev", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jon")
LAST_NAMES = ("Martin", "Okafor", "Lindqvist", "Ramos")


def submit_new_extension(page, number: str, name: str) -> None:
    """Open the New extension dialog on the extensions page and send it."""
    page.click("text=New extension")
    page.wait_for_selector("#panel[open] input[name=number]")
    page.fill("#panel input[name=number]", number)
    page.fill("#panel input[name=name]", name)
    page.click("#panel button[type=submit]")


@pytest.fixture
def office(app, db):
    """A realistic small office: 40 extensions (some on the phone), 5 groups, DIDs, a trunk, users."""
    from pbxweb.dids_trunks import service as dids_trunks
    from pbxweb.extensions import service as extensions
    from pbxweb.groups import service as groups
    from pbxweb.live import store
    from pbxweb.models import ExtensionStatus, utcnow

    create_user("alice", "admin", "correct horse battery")
    for i in range(40):
        name = f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i // 10]}"
        extensions.create_extension({"number": str(2001 + i), "name": name, "voicemail": i % 3 == 0,
                                     "email": f"{name.split()[0].lower()}{i}@example.com" if i % 2 else None})
    ids = {}
    for index, (name, strategy) in enumerate((("Sales", "ringall"), ("Support", "hunt"), ("Billing", "memoryhunt"),
                                              ("Reception", "ringall"), ("Night line", "random"))):
        members = [{"number": str(2001 + index * 6 + k), "penalty": k % 2} for k in range(6)]
        ids[name] = groups.create_group({"name": name, "ring_strategy": strategy, "members": members})["id"]
    dids_trunks.create_did({"number": "31201234567", "destination_type": "group", "destination": ids["Reception"],
                            "description": "Main line"})
    dids_trunks.create_did({"number": "31201234568", "destination_type": "group", "destination": ids["Support"],
                            "description": "Support hotline"})
    dids_trunks.create_did({"number": "31201234599", "destination_type": "extension", "destination": "2001",
                            "description": "Ann's direct line", "is_active": False})
    dids_trunks.create_trunk({"name": "provider", "host": "sip.example.net", "username": "acct42",
                              "password": "trunk-Secret-99", "register": True, "match": ["198.51.100.0/24"]})
    create_user("mia", "manager", "correct horse battery")
    create_user("dev", "agent", "correct horse battery", "2004")
    from pbxweb.auth.service import create_token

    create_token("mia", "nightly export")
    create_token("mia", "wallboard")
    create_token("dev", "softphone script")
    states = ["NOT_INUSE"] * 20 + ["INUSE"] * 6 + ["RINGING"] * 3 + ["ONHOLD"] * 2
    with db.engine.begin() as conn:
        conn.execute(sa.insert(ExtensionStatus.__table__), [
            {"number": str(2001 + i), "registration": "unreachable" if i == 31 else "registered", "device_state": state,
             "calls": 1 if state != "NOT_INUSE" else 0, "queues": {}, "updated_at": utcnow()}
            for i, state in enumerate(states + ["NOT_INUSE"])
        ])
        store.set_ami_status(conn, connected=True, since=store.now(), asterisk_version="22.10.1")
    return ids


def test_screenshots_of_every_admin_page(app, live_server, page, office, screenshots):
    sign_in(page, live_server)
    pages = {"dashboard": "/", "extensions": "/extensions", "groups": "/groups", "group": f"/groups/{office['Support']}",
             "dids": "/dids", "trunks": "/trunks", "users": "/users", "audit": "/audit", "import": "/extensions/import"}
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for name, path in pages.items():
            page.goto(f"{live_server}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(screenshots / f"{name}-{size_name}.png"))
    page.set_viewport_size(PHONE)
    page.click("text=Menu")
    page.wait_for_selector("#nav-links >> text=Dashboard", state="visible")
    page.screenshot(path=str(screenshots / "menu-phone.png"))
    page.set_viewport_size(DESKTOP)
    assert page.is_visible("#nav-links >> text=Audit log") and not page.is_visible("text=Menu")
    page.goto(f"{live_server}/extensions")
    submit_new_extension(page, "0999", 'Bad "quote"')
    page.wait_for_selector("#e-number")
    page.screenshot(path=str(screenshots / "extension-form-errors-desktop.png"))
    print(f"\nscreenshots: {screenshots}")


def test_a_bad_number_is_shown_inline_then_the_fixed_extension_appears_without_reload(app, live_server, page, rows, office):
    sign_in(page, live_server)
    page.goto(f"{live_server}/extensions")
    page.evaluate("window.stillThisPage = true")
    submit_new_extension(page, "0777", "Walter White")
    error = page.wait_for_selector("#e-number")
    assert "must not start with 0" in error.inner_text()
    assert page.evaluate("document.activeElement.name") == "number"  # the first bad field has the focus
    page.fill("#panel input[name=number]", "2777")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#panel #sip-password")
    password = page.input_value("#sip-password")
    assert len(password) >= 16
    page.click("#panel >> text=Done")
    page.wait_for_selector("#ext-2777")
    # The listing came back from the server: its count too, and the new row in number order.
    page.wait_for_selector("#extension-count >> text=41 extensions")
    assert page.evaluate("[...document.querySelectorAll('#extension-rows tr')].map(r => r.id).slice(-2)") == ["ext-2040", "ext-2777"]
    assert page.evaluate("window.stillThisPage") is True
    assert [r["password"] for r in rows("ps_auths", id="2777")] == [password]
    assert rows("ps_endpoints", id="2777") and rows("ps_aors", id="2777")
    page.click("#ext-2777 >> text=Edit")
    page.fill("#panel input[name=name]", "Walter H. White")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#ext-2777 >> text=Walter H. White")
    assert not page.locator("#panel").evaluate("dialog => dialog.open")
    assert rows("ps_endpoints", id="2777")[0]["callerid"] == '"Walter H. White" <2777>'
    assert page.evaluate("window.stillThisPage") is True


def test_search_narrows_the_table_as_you_type(app, live_server, page, office):
    sign_in(page, live_server)
    page.goto(f"{live_server}/extensions")
    assert page.locator("#extension-rows tr").count() == 40
    page.keyboard.press("/")
    page.keyboard.type("greta")
    page.wait_for_function("document.querySelectorAll('#extension-rows tr').length === 4")
    assert "q=greta" in page.url  # the filter lives in the URL
    assert all("Greta" in text for text in page.locator("#extension-rows tr td:nth-child(2)").all_inner_texts())


def test_delete_asks_in_a_dialog_naming_the_extension_and_removes_its_rows(app, live_server, page, rows, office):
    sign_in(page, live_server)
    page.goto(f"{live_server}/extensions?q=2040")
    page.click("#ext-2040 >> text=Delete")
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert "Delete extension 2040 — Jon Ramos?" in dialog.inner_text()
    page.click("#confirm-dialog [data-answer=no]")
    assert page.locator("#ext-2040").count() == 1 and rows("ps_endpoints", id="2040")
    page.click("#ext-2040 >> text=Delete")
    page.click("#confirm-dialog [data-answer=yes]")
    page.wait_for_selector("#ext-2040", state="detached")
    assert rows("ps_endpoints", id="2040") == [] and rows("ps_auths", id="2040") == []


def test_a_token_is_revoked_after_a_dialog_naming_it_and_a_reset_takes_the_users_tokens_off_the_page(app, live_server, page, office):
    sign_in(page, live_server)
    page.goto(f"{live_server}/users")
    assert page.locator("#token-rows tr").count() == 3
    page.click("#token-rows tr:has-text('nightly export') >> text=Revoke")
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert "Revoke the API token “nightly export” of mia?" in dialog.inner_text()
    page.click("#confirm-dialog [data-answer=yes]")
    page.wait_for_selector("#token-rows tr:has-text('nightly export')", state="detached")
    page.click("tr:has-text('dev') >> text=Reset password")
    page.click("#confirm-dialog [data-answer=yes]")
    page.wait_for_selector("#panel[open] >> text=New password for dev")
    page.wait_for_selector("#token-rows tr:has-text('softphone script')", state="detached")
    assert page.locator("#token-rows tr").count() == 1  # mia's wallboard


def test_a_csv_with_one_bad_row_shows_that_row_and_writes_nothing(app, live_server, page, rows, office, tmp_path):
    csv = tmp_path / "new-staff.csv"
    csv.write_text("number,name,email\n3001,Ann New,ann@example.com\n3002,Bob New,bob@@example\n3003,Cy New,\n")
    sign_in(page, live_server)
    page.goto(f"{live_server}/extensions")
    page.click("text=Import CSV")
    page.set_input_files("input[type=file]", str(csv))
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#import-errors")
    assert page.locator("#import-errors tbody tr").all_inner_texts() == ["3\temail\tis not a valid e-mail address"]
    assert rows("ps_endpoints", id="3001") == []


def test_an_agent_sees_no_admin_menu_and_is_refused_admin_pages(app, live_server, page, office):
    sign_in(page, live_server, "dev")
    nav = page.locator(".nav-links").inner_text()
    assert "Groups" in nav and "Extensions" not in nav and "Users" not in nav
    for path in ("/extensions", "/users", "/audit", "/trunks"):
        response = page.goto(f"{live_server}{path}")
        assert response.status == 403, path
        assert "Not allowed" in page.locator("h1").inner_text()
    # The refusals were the point: the console reports each as a failed load.
    assert len(page.console_errors) == 4 and all("403" in e for e in page.console_errors)
    page.console_errors.clear()


@pytest.fixture
def call_records(db, office):
    """12 callers to Support as CDR and the queue log have them: every third hung up waiting, the fifth was
    redirected to Sales and answered there, the rest answered by 2007 (whose queue leg, like every queue
    leg of the shipped dialplan, says ANSWERED whatever happened); 6 internal calls."""
    from pbxweb.models import Extension

    from .test_cdr import leg, qlog

    member, sales_member = (db.session.query(Extension).filter_by(number=n).one().name for n in ("2007", "2001"))
    support, sales = f"extgroup_{office['Support']}", f"extgroup_{office['Sales']}"
    with db.engine.begin() as conn:
        for n in range(12):
            caller, at = f"06{12345600 + n}", -3600 + n * 250
            leg(conn, f"700.{n}", at=at, src=caller, dst="s", channel=f"PJSIP/provider-{n:08x}",
                dstchannel="PJSIP/2007-00000001", lastapp="Queue", lastdata=f"{support},t,,,60",
                disposition="ANSWERED", duration=40 + n, billsec=40 + n, clid=f'"Customer {n}" <{caller}>', sequence=2 * n)
            leg(conn, f"700.{n}", at=at, src=caller, dst="s", channel=f"PJSIP/provider-{n:08x}",
                dstchannel="PJSIP/2008-00000002", lastapp="Queue", lastdata=f"{support},t,,,60",
                disposition="NO ANSWER", duration=5, billsec=0, clid=f'"Customer {n}" <{caller}>', sequence=2 * n + 1)
            qlog(conn, f"700.{n}", at=at, queue=support, event="ENTERQUEUE", data=("", caller, "1"))
            if n % 3 == 0:
                qlog(conn, f"700.{n}", at=at + 5 + n, queue=support, event="ABANDON", data=("1", "1", str(5 + n)))
            elif n == 5:
                qlog(conn, f"700.{n}", at=at + 8, queue=support, event="ABANDON", data=("1", "1", "8"))
                qlog(conn, f"700.{n}", at=at + 9, queue=sales, event="ENTERQUEUE", data=("", caller, "1"))
                qlog(conn, f"700.{n}", at=at + 13, queue=sales, event="CONNECT", agent=sales_member, data=("4", "x", "4"))
            else:
                qlog(conn, f"700.{n}", at=at + 10, queue=support, event="CONNECT", agent=member, data=("10", "x", "10"))
                qlog(conn, f"700.{n}", at=at + 40 + n, queue=support, event="COMPLETECALLER", agent=member,
                     data=("10", str(30 + n), "1"))
        for n in range(6):
            leg(conn, f"800.{n}", at=-1800 + n * 200, src=str(2001 + n), dst=str(2010 + n), sequence=100 + n)


def test_the_call_log_filters_and_expands_a_call(app, live_server, page, call_records, screenshots):
    sign_in(page, live_server)
    page.goto(f"{live_server}/calls?range=today")
    assert page.locator("tr.call").count() == 18
    page.screenshot(path=str(screenshots / "calls-desktop.png"))
    assert "Hung up after 5 s waiting (position 1)" in page.locator("tr.call").last.inner_text()
    page.select_option("select[name=outcome]", "abandoned")
    page.wait_for_function("document.querySelectorAll('tr.call').length === 4")
    assert "outcome=abandoned" in page.url
    page.locator("tr.call .legs-toggle").first.click()
    legs = page.locator("tr.legs-row:not([hidden]) table.legs tbody tr")
    legs.first.wait_for()  # fetched as the call opens
    # In words, the channels behind them as a hint; never "Queue(extgroup_1,…)" as the text.
    assert legs.count() == 2 and "rang 2007, no answer" in legs.first.inner_text()
    assert "Queue(" not in legs.first.inner_text() and "PJSIP/2007" in legs.first.locator("td").nth(1).get_attribute("title")
    page.screenshot(path=str(screenshots / "calls-expanded-desktop.png"))
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/calls?range=today")
    # On a phone the filters fold away but for the dates and the number; a leg keeps its column names.
    assert not page.is_visible("select[name=outcome]") and page.is_visible("input[name=number]")
    page.locator("tr.call .legs-toggle").first.click()
    cell = page.locator("tr.legs-row:not([hidden]) table.legs tbody tr td").nth(1)
    cell.wait_for()
    assert cell.evaluate("td => getComputedStyle(td, '::before').content") == '"What happened: "'
    page.screenshot(path=str(screenshots / "calls-phone.png"))
    page.click("text=More filters")
    assert page.is_visible("select[name=outcome]")
    page.screenshot(path=str(screenshots / "calls-filters-phone.png"))
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server}/calls/stats?range=today")
    assert "18 calls" in page.locator(".count").inner_text()
    page.screenshot(path=str(screenshots / "calls-stats-desktop.png"), full_page=True)


def open_socket(app, live_server, user):
    """A live socket as the dashboard opens it, with a session of `user`; returns (client, its test browser)."""
    import simple_websocket

    from .test_access import signed_in

    browser = signed_in(app, user)
    cookie = browser.get_cookie("session")
    host = live_server.split("//")[1]
    client = simple_websocket.Client(f"ws://{host}/live/ws", headers={"Origin": "http://127.0.0.1", "Cookie": f"session={cookie.value}"})
    return client, browser


def closed_within(client, seconds: float) -> bool:
    import time

    import simple_websocket

    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            client.receive(timeout=0.2)
    except simple_websocket.ConnectionClosed:
        return True
    return False


@pytest.fixture
def sockets(app, live_server):
    import contextlib

    import simple_websocket

    app.config["LIVE_RECHECK_SECONDS"] = 0.3
    opened = []

    def open_as(user):
        client, browser = open_socket(app, live_server, user)
        opened.append(client)
        return client, browser

    yield open_as
    for client in opened:
        with contextlib.suppress(simple_websocket.ConnectionClosed):
            client.close()


def test_a_deactivated_users_live_socket_is_closed(app, db, sockets):
    from pbxweb.auth.service import update_user
    from pbxweb.models import User

    create_user("alice", "admin", "correct horse battery")
    dora, _ = create_user("dora", "agent", "correct horse battery")
    client, _ = sockets(dora)
    assert 'id="waiting-calls"' in client.receive(timeout=5)
    update_user(dora.id, {"is_active": False}, db.session.query(User).filter_by(username="alice").one())
    assert closed_within(client, 10)


def test_a_live_socket_closes_on_a_role_change_and_reopens_with_what_the_new_role_may_see(app, db, live_site, sockets):
    from pbxweb.auth.service import update_user

    boss, _ = create_user("boss", "admin", "correct horse battery")
    alice, _ = create_user("alice", "admin", "correct horse battery", "1003")  # 1003 rings in Support only
    client, _ = sockets(alice)
    first = client.receive(timeout=5)
    assert 'id="waiting-1-1"' in first and 'id="waiting-1-2"' in first  # an admin: both groups' callers
    assert not closed_within(client, 1.5)  # rechecked several times: nothing changed, it stays open
    update_user(alice.id, {"role": "agent"}, boss)
    assert closed_within(client, 10)
    again, _ = sockets(alice)
    first = again.receive(timeout=5)
    assert 'id="waiting-1-2"' in first and 'id="waiting-1-1"' not in first  # an agent of Support


def test_a_live_socket_closes_when_its_users_groups_change(app, db, api, live_site, sockets):
    carl, _ = create_user("carl", "agent", "correct horse battery", "1003")
    client, _ = sockets(carl)
    assert 'id="waiting-1-1"' not in client.receive(timeout=5)
    assert not closed_within(client, 1)
    members = [{"number": "1001"}, {"number": "1002"}, {"number": "1003"}]
    assert api.put(f"/api/groups/{live_site['sales']}/members", json={"members": members}).status_code == 200
    assert closed_within(client, 10)


def test_logging_out_closes_the_live_socket_of_that_session(app, db, sockets):
    alice, _ = create_user("alice", "admin", "correct horse battery")
    client, browser = sockets(alice)
    assert 'id="waiting-calls"' in client.receive(timeout=5)
    token = browser.get("/login").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert closed_within(client, 10)


def test_codecs_and_context_are_folded_under_advanced_which_opens_by_itself_for_an_error_or_a_value_not_the_default(
        app, live_server, page, rows, office, screenshots):
    from pbxweb.extensions import service as extensions

    extensions.update_extension("2010", {"context": "from-sales"})
    sign_in(page, live_server)
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto(f"{live_server}/extensions")
        page.click("text=New extension")
        page.wait_for_selector("#panel[open] input[name=number]")
        # A new extension takes the site's defaults: folded away.
        assert not page.locator("#panel details.advanced").evaluate("d => d.open")
        assert not page.is_visible("#panel input[name=codecs]")
        page.screenshot(path=str(screenshots / f"extension-form-advanced-closed-{size_name}.png"))
        page.click("#panel summary >> text=Advanced")
        assert page.input_value("#panel input[name=codecs]") == app.config["PBX_DEFAULT_CODECS"]
        page.fill("#panel input[name=number]", "2777")
        page.fill("#panel input[name=name]", "Walter White")
        page.fill("#panel input[name=codecs]", "ulaw,nosuch")
        page.click("#panel summary >> text=Advanced")  # folded again before sending: the error opens it
        page.click("#panel button[type=submit]")
        error = page.wait_for_selector("#e-codecs")
        assert "unknown codec: nosuch" in error.inner_text()
        assert page.locator("#panel details.advanced").evaluate("d => d.open")
        assert page.evaluate("document.activeElement.name") == "codecs"  # the bad field, visible, has the focus
        page.screenshot(path=str(screenshots / f"extension-form-advanced-error-{size_name}.png"))
        page.click("#panel >> text=Cancel")
        # An extension with a context of its own shows it at once; one with the defaults keeps it folded.
        page.click("#ext-2010 >> text=Edit")
        page.wait_for_selector("#panel[open] input[name=name]")
        assert page.locator("#panel details.advanced").evaluate("d => d.open")
        assert page.input_value("#panel input[name=context]") == "from-sales"
        page.screenshot(path=str(screenshots / f"extension-form-advanced-open-{size_name}.png"))
        page.click("#panel >> text=Cancel")
        page.click("#ext-2011 >> text=Edit")
        page.wait_for_selector("#panel[open] input[name=name]")
        assert not page.locator("#panel details.advanced").evaluate("d => d.open")
        page.click("#panel >> text=Cancel")
    assert not rows("ps_endpoints", id="2777")  # the refused form wrote nothing
