"""Issue 17's flows walked end to end in a real browser, at desktop (1440×900) and phone (390×844) width, on the
app as deployed (gunicorn's gevent worker with the listener inside, the test AMI server as Asterisk). Every step
is screenshotted (PBX_SCREENSHOTS) for a person to look at; every step fails the test on a console error, a
failed load (a favicon's 404 among them), a page wider than the screen, a placeholder cut off, or a section title
set larger than its page's.

Steps other browser tests check in depth are only passed through here: the call log's filters and legs
(test_pages_browser.py::test_the_call_log_filters_and_expands_a_call)."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from .conftest import DESKTOP, PHONE
from .smtp_server import CapturingSmtpServer

WIDTHS = {"desktop": DESKTOP, "phone": PHONE}
ZONE = "Europe/Amsterdam"
PEOPLE = (("2001", "Ann Martin"), ("2002", "Bob Okafor"), ("2003", "Chloé Lindqvist"), ("2004", "Dev Ramos"),
          ("2005", "Maximiliane van den Bergh-Oost"), ("2006", "Farid O'Neil & Sons"), ("2007", "Greta Holm"),
          ("2008", "Hugo Peeters"))


@pytest.fixture(params=list(WIDTHS))
def width(request) -> str:
    return request.param


@pytest.fixture
def mail(monkeypatch, tmp_path):
    """A mail server gunicorn is told of, the site's zone, and an empty voicemail spool of its own."""
    server = CapturingSmtpServer()
    for name, value in (("PBX_SMTP_HOST", "127.0.0.1"), ("PBX_SMTP_PORT", str(server.port)), ("PBX_SMTP_STARTTLS", "off"),
                        ("PBX_SMTP_FROM", "pbx@example.test"), ("PBX_TIMEZONE", ZONE),
                        ("PBX_SIP_PUBLIC_HOST", "pbx.example.test"), ("PBX_VOICEMAIL_SPOOL", str(tmp_path / "spool"))):
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.fixture
def office(api, site, db):
    """On top of the served site (alice, admin on 1002; carl, agent of Support on 1003): eight people (one name
    as long as a caller id holds, one with an apostrophe and an ampersand), a hunt group "Front desk" of
    2001–2004, a DID, a trunk, pause reasons and a few of Support's calls."""
    from .test_cdr import leg, qlog

    for number, name in PEOPLE:
        assert api.post("/api/extensions", json={"number": number, "name": name, "voicemail": number < "2004",
                                                 "email": f"{number}@example.test"}).status_code == 201
    front = api.post("/api/groups", json={"name": "Front desk", "ring_strategy": "hunt",
                                          "members": [{"number": n} for n in ("2001", "2002", "2003", "2004")]}).get_json()
    api.post("/api/dids", json={"number": "31201234567", "destination_type": "group", "destination": front["id"],
                                "description": "Main line"})
    api.post("/api/trunks", json={"name": "provider", "host": "sip.example.net", "username": "acct42",
                                  "password": "trunk-Secret-99", "register": True})
    for reason in ("Lunch", "Meeting"):
        api.post("/api/pause-reasons", json={"name": reason})
    support = f"extgroup_{site['support']}"
    with db.engine.begin() as conn:
        for n in range(4):
            caller, at = f"06{12345600 + n}", -3000 + n * 400
            leg(conn, f"900.{n}", at=at, src=caller, dst="s", channel=f"PJSIP/provider-{n:08x}", dstchannel="PJSIP/1003-00000001",
                lastapp="Queue", lastdata=f"{support},t,,,60", disposition="ANSWERED", duration=40, billsec=30,
                clid=f'"Customer {n}" <{caller}>', sequence=2 * n)
            qlog(conn, f"900.{n}", at=at, queue=support, event="ENTERQUEUE", data=("", caller, "1"))
            if n % 2:
                qlog(conn, f"900.{n}", at=at + 9, queue=support, event="ABANDON", data=("1", "1", "9"))
            else:
                qlog(conn, f"900.{n}", at=at + 10, queue=support, event="CONNECT", agent="1003 Agent 1003", data=("10", "x", "10"))
                qlog(conn, f"900.{n}", at=at + 40, queue=support, event="COMPLETECALLER", agent="1003 Agent 1003",
                     data=("10", "30", "1"))
    return {**site, "front": front["id"]}


# The placeholders of visible inputs wider than the room their box leaves for text (a search box's icon takes
# its left padding): a placeholder says what to type, and a cut one does not.
CUT_PLACEHOLDERS = """() => {
  const ruler = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("input[placeholder]")].filter(input => input.offsetParent !== null).filter(input => {
    const style = getComputedStyle(input);
    ruler.font = style.font;
    return ruler.measureText(input.placeholder).width > input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  }).map(input => input.placeholder);
}"""

# A section's title set larger than its page's own (Pico's h2 is larger than our page title).
TITLES_ABOVE_THE_PAGES = """() => {
  const title = document.querySelector("main h1");
  if (!title) return [];
  const size = element => parseFloat(getComputedStyle(element).fontSize);
  return [...document.querySelectorAll("main h2")].filter(h2 => size(h2) > size(title)).map(h2 => h2.textContent.trim());
}"""


class Walk:
    """One person's browser on the served app at one width: each step is looked at (screenshot) and checked
    for what fails any page."""

    def __init__(self, page, base: str, width: str, folder):
        self.page, self.base, self.width, self.folder = page, base, width, folder
        self.failed_loads = []
        page.on("response", lambda r: r.status >= 404 and self.failed_loads.append(f"{r.status} {r.url}"))
        page.set_viewport_size(WIDTHS[width])

    def go(self, path: str) -> None:
        assert self.page.goto(f"{self.base}{path}").status == 200, path
        self.page.wait_for_load_state("networkidle")

    def look(self, name: str, full_page: bool = False) -> None:
        """Screenshot this step, and hold the page to what every page owes (the module's docstring)."""
        self.page.screenshot(path=str(self.folder / f"walk-{name}-{self.width}.png"), full_page=full_page)
        overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than the {self.width} screen"
        assert self.failed_loads == [], name
        cut = self.page.evaluate(CUT_PLACEHOLDERS)
        assert cut == [], f"{name}: placeholders cut off at {self.width} width"
        louder = self.page.evaluate(TITLES_ABOVE_THE_PAGES)
        assert louder == [], f"{name}: section titles larger than the page's"

    def confirm(self, expected: str) -> None:
        dialog = self.page.wait_for_selector("#confirm-dialog[open]")
        assert expected in dialog.inner_text()
        self.page.click("#confirm-dialog [data-answer=yes]")


@pytest.fixture
def walk(mail, office, server, person, width, screenshots):
    def as_(username: str) -> Walk:
        page, _ = person(server, username)
        return Walk(page, server, width, screenshots)

    return as_


def card_fields(page) -> dict:
    return dict(zip(page.locator("#panel .phone-card dt").all_inner_texts(), page.locator("#panel .phone-card dd").all_inner_texts()))


# --- 1. phones ------------------------------------------------------------------------------------------------


def test_a_new_phone_gets_its_card_on_create_again_with_a_new_password_mailed_and_printed(walk, mail, rows):
    w = walk("alice")
    page = w.page
    w.go("/extensions")
    assert page.inner_text("#extension-count") == "11 extensions"
    page.click("text=New extension")
    page.fill("#panel input[name=number]", "2100")
    page.fill("#panel input[name=name]", "Zoë Visser")
    page.fill("#panel input[name=email]", "zoe@example.test")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#panel #sip-password")
    card = card_fields(page)
    assert (card["SIP server"], card["Port"], card["Transport"], card["User name"]) == ("pbx.example.test", "5060", "UDP", "2100")
    first = page.input_value("#sip-password")
    assert [r["password"] for r in rows("ps_auths", id="2100")] == [first]
    w.look("phones-1-created")
    page.click("#panel >> text=Done")
    # The listing came back from the server: its count and the new row in number order.
    page.wait_for_selector("#extension-count >> text=12 extensions")
    assert page.evaluate("[...document.querySelectorAll('#extension-rows tr')].map(r => r.id).slice(-1)") == ["ext-2100"]
    assert not page.locator("#panel").evaluate("dialog => dialog.open")
    w.look("phones-2-listed")

    page.click("#ext-2100 >> text=Edit")
    page.click("#panel >> text=New SIP password…")
    w.confirm("Generate a new SIP password for 2100?")
    page.wait_for_selector("#panel >> text=New SIP password for 2100")
    second = page.input_value("#sip-password")
    assert second != first and [r["password"] for r in rows("ps_auths", id="2100")] == [second]
    assert card_fields(page)["User name"] == "2100"
    w.look("phones-3-new-password")

    page.click("#panel >> text=E-mail to zoe@example.test")
    page.wait_for_selector("#phone-mail-2100 >> text=zoe@example.test")
    (sent,) = mail.messages
    assert sent["To"] == "zoe@example.test" and f"Password: {second}" in sent.get_content()
    w.look("phones-4-mailed")

    page.click("#panel >> text=Done")
    w.go("/extensions/2100/phone")
    assert "pbx.example.test" in page.inner_text("main") and second not in page.content()  # shown once, never again
    w.look("phones-5-printable", full_page=True)


def test_the_admins_export_with_passwords_asks_first_and_is_in_the_audit_log(walk):
    w = walk("alice")
    page = w.page
    w.go("/extensions")
    w.look("export-1-extensions")
    page.click("text=Export with passwords")
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert "every extension's SIP password" in dialog.inner_text()
    w.look("export-2-asks")
    page.click("#confirm-dialog [data-answer=no]")
    with page.expect_download() as download:
        page.click("text=Export with passwords")
        page.click("#confirm-dialog [data-answer=yes]")
    exported = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert len(exported) == 11 and all(len(row["password"]) >= 16 for row in exported)
    w.go("/audit")
    entry = page.locator("tbody tr").first.inner_text()
    assert "user:alice" in entry and "download SIP passwords in the extensions export" in entry and "Every extension (11)" in entry
    w.look("export-3-audited")


def test_an_import_previews_its_rows_then_offers_its_passwords_once(walk, tmp_path):
    w = walk("alice")
    page = w.page
    w.go("/extensions/import")
    assert page.get_attribute("text=Download a sample file", "href").endswith("/extensions/import/sample.csv")
    w.look("import-1-start")
    bad = tmp_path / "bad.csv"
    bad.write_text("number,name,voicemail\n3001,Ines Bakker,maybe\n")
    page.set_input_files("input[type=file]", str(bad))
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#import-errors")
    assert "yes or no" in page.inner_text("#import-errors")
    w.look("import-2-refused", full_page=True)

    good = tmp_path / "new-staff.csv"
    good.write_text("number,name,email,voicemail\n3001,Ines Bakker,ines@example.test,yes\n"
                    "3002,Jon de Wit,,no\n3003,Karin Smit,karin@example.test,no\n")
    w.go("/extensions/import")
    page.set_input_files("input[type=file]", str(good))
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#import-preview")
    preview = page.locator("#import-preview tbody")
    assert preview.locator("td:nth-child(2)").all_inner_texts() == ["3001", "3002", "3003"]
    assert preview.locator("td:nth-child(3)").all_inner_texts() == ["Ines Bakker", "Jon de Wit", "Karin Smit"]
    # A bare "yes" and "generated" say what they are, as a card on a phone too.
    shown = preview.locator("td[data-label=Voicemail]").first.evaluate("td => getComputedStyle(td, '::before').content")
    assert shown == ('"Voicemail: "' if w.width == "phone" else "none")
    w.look("import-3-preview", full_page=True)
    page.click("button:has-text('Import 3 extensions')")
    page.wait_for_selector("text=Imported 3 extensions.")
    w.look("import-4-imported", full_page=True)
    with page.expect_download() as download:
        page.click("button:has-text('Download the 3 SIP passwords')")
    got = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert [r["number"] for r in got] == ["3001", "3002", "3003"] and all(len(r["password"]) >= 16 for r in got)
    w.go("/audit")
    entry = page.locator("tbody tr").first.inner_text()
    assert "download SIP passwords" in entry and "3001, 3002, 3003" in entry
    w.look("import-5-download-audited")


# --- 2 and 3. the hunt order, and the audit log of members --------------------------------------------------


def test_a_hunt_groups_order_moves_on_the_page_and_each_member_change_is_its_own_audit_entry(walk, office):
    w = walk("alice")
    page = w.page
    w.go(f"/groups/{office['front']}")

    def order():
        return page.locator("#members-table tbody tr td:nth-child(2)").all_inner_texts()

    assert order() == ["2001", "2002", "2003", "2004"]
    assert "In order (hunt)" in page.inner_text("main")
    w.look("hunt-1-group", full_page=True)
    page.click("[aria-label='Move 2003 up']")
    page.wait_for_function("document.querySelector('#members-table tbody tr:nth-child(2) td:nth-child(2)').innerText === '2003'")
    assert order() == ["2001", "2003", "2002", "2004"]
    page.fill("input[aria-label='Search extensions to add']", "2007")
    page.wait_for_function("document.querySelectorAll('#candidates li').length === 1")
    page.click("#candidates li:has-text('Greta Holm') >> text=Add")
    page.wait_for_selector("#member-2007")
    page.click("#member-2004 >> text=Remove")
    w.confirm("Remove 2004 — Dev Ramos from Front desk?")
    page.wait_for_selector("#member-2004", state="detached")
    assert order() == ["2001", "2003", "2002", "2007"]
    # A member's row says what its penalty and pause are, as a card on a phone too.
    for cell, label in (("Penalty", '"Penalty: "'), ("Paused", '"Paused: "')):
        shown = page.locator(f"#member-2001 td[data-label={cell}]").evaluate("td => getComputedStyle(td, '::before').content")
        assert shown == (label if w.width == "phone" else "none")
    w.look("hunt-2-moved-added-removed", full_page=True)

    # An extension switched off, for the fields in words.
    w.go("/extensions?q=2008")
    page.click("#ext-2008 >> text=Edit")
    page.uncheck("#panel input[name=is_active]")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#ext-2008.inactive")
    now = datetime.now(ZoneInfo(ZONE))
    w.go("/audit")
    entries = page.locator("tbody tr").all_inner_texts()
    assert any("extension 2008" in e and "Active: yes → no" in e for e in entries)
    front = [e for e in entries if "group Front desk" in e]
    assert any("Member 2004 removed" in e and "Member 2007" not in e for e in front)
    assert any("Member 2007" in e and "added" in e and "Member 2004" not in e for e in front)
    assert any("Member 2003 position: 3 → 2" in e and "Member 2002 position: 2 → 3" in e for e in front)
    # When, in the site's zone (Asterisk and the database keep UTC).
    shown = {(now - timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in (0, 1)}
    assert any(e.startswith(tuple(shown)) for e in entries), (shown, entries[0])
    w.look("audit-1-members-and-fields")


# --- 4. forms and lists ---------------------------------------------------------------------------------------


def test_a_new_did_refreshes_the_count_and_a_refused_trunk_keeps_its_typed_password(walk):
    w = walk("alice")
    page = w.page
    w.go("/dids")
    assert page.inner_text(".count") == "1 inbound number"
    page.click("text=New DID")
    page.fill("#panel input[name=number]", "31201234500")
    page.select_option("#panel select[name=target]", label="2005 — Maximiliane van den Bergh-Oost")
    page.fill("#panel input[name=description]", "Maximiliane's direct line")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("text=2 inbound numbers")
    # Sorted by number, as the listing is when the page opens.
    assert page.locator("tbody tr").first.inner_text().startswith("31201234500")
    # The switch says what it switches, as a card on a phone too.
    shown = page.locator("#did-2 td[data-label=Active]").evaluate("td => getComputedStyle(td, '::before').content")
    assert shown == ('"Active: "' if w.width == "phone" else "none")
    w.look("dids-1-created")

    w.go("/trunks")
    page.click("text=New trunk")
    page.fill("#panel input[name=name]", "backup")
    page.fill("#panel input[name=host]", "not a host!")
    page.fill("#panel input[name=password]", "Typed-Secret-123")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#panel [aria-invalid=true]")
    assert page.input_value("#panel input[name=password]") == "Typed-Secret-123"
    # The bad field has the focus, not the form's first field (htmx focuses [autofocus] as it settles).
    page.wait_for_function("document.activeElement.name === 'host'")
    w.look("trunks-1-refused-keeps-password")


def test_a_new_users_role_is_in_words_their_extension_is_picked_and_the_password_is_theirs(walk):
    w = walk("alice")
    page = w.page
    w.go("/users")
    page.click("text=New user")
    page.wait_for_selector("#panel[open] input[name=username]")
    assert "Quality checker (QA)" in page.locator("#panel select[name=role] option").all_inner_texts()
    page.fill("#panel input[name=username]", "ines")
    page.select_option("#panel select[name=role]", label="Agent")
    page.fill("#panel input[name=extension]", "Greta")
    page.wait_for_function("document.querySelectorAll('#extension-options option').length === 1")
    assert page.get_attribute("#extension-options option", "value") == "2007"
    w.look("users-1-new-with-picker")
    page.fill("#panel input[name=extension]", "2007")
    page.click("#panel button[type=submit]")
    page.wait_for_selector("#panel >> text=You will not see it again")
    assert "into the phone" not in page.inner_text("#panel")
    w.look("users-2-created")


# --- 5 and 6. every page, in words, on a small screen too --------------------------------------------------

ADMIN_PAGES = ("/", "/calls?range=today", "/calls/stats?range=today", "/voicemail", "/voicemail/2001", "/extensions", "/extensions/import",
               "/extensions/2005/phone", "/groups", "/groups/{front}", "/dids", "/trunks", "/users", "/pause-reasons", "/audit")
# Pause reasons are an admin page: agents pick them on the dashboard.
AGENT_PAGES = ("/", "/calls?range=today", "/calls/stats?range=today", "/voicemail", "/groups", "/groups/{support}")


@pytest.mark.parametrize("username, paths", [("alice", ADMIN_PAGES), ("carl", AGENT_PAGES)], ids=["admin", "agent"])
def test_every_page_loads_clean_and_fits(walk, office, width, username, paths):
    w = walk(username)
    page = w.page
    for path in paths:
        path = path.format(**office)
        w.go(path)
        menu = page.locator(".menu-toggle")
        if width == "phone":
            # The navigation folds behind Menu, which opens all of it, the Dashboard first.
            assert menu.is_visible() and not page.is_visible("#nav-links >> text=Dashboard")
        else:
            assert not menu.is_visible() and page.is_visible("#nav-links >> text=Dashboard")
        w.look(f"page-{username}-{path.strip('/').split('?')[0].replace('/', '-') or 'dashboard'}", full_page=True)
        if path.startswith("/calls/stats"):
            # Figures keep their columns on a phone (scrolling sideways in their box): bare numbers say nothing.
            assert page.locator(".table-wrap.figures thead th").first.is_visible()
        if path == "/":
            # The counts by state read alike, each with its shape: Paused is no smaller, shapeless word.
            looks = page.locator("#presence-counts .state").evaluate_all(
                "spans => spans.map(s => [getComputedStyle(s).display, getComputedStyle(s).fontSize])")
            assert len(looks) == 5 and len(set(map(tuple, looks))) == 1, looks
            # Ringing is news, not trouble: not the red of a call in progress.
            dot = "el => getComputedStyle(el, '::before').backgroundColor"
            assert page.locator("#presence-counts .ringing").evaluate(dot) != page.locator("#presence-counts .in-call").evaluate(dot)
        if path == "/" and username == "alice":
            # Names are not cut in the grid: the longest a caller id holds shows whole.
            name = page.locator("#ext-card-2005 .ext-name")
            assert name.inner_text() == "Maximiliane van den Bergh-Oost"
            assert name.evaluate("el => el.scrollHeight <= el.clientHeight && el.scrollWidth <= el.clientWidth")
    if width == "phone":
        page.click(".menu-toggle")
        assert page.is_visible("#nav-links >> text=Dashboard")
        w.look(f"page-{username}-menu-open")

    w.go("/calls?range=today")
    if width == "phone":
        assert not page.is_visible("select[name=outcome]")
        page.click("text=More filters")
        assert page.is_visible("select[name=outcome]")
        w.look(f"calls-{username}-more-filters")
    page.locator("tr.call .legs-toggle").first.click()
    legs = page.locator("tr.legs-row:not([hidden]) table.legs tbody tr")
    assert "queue Support → rang 1003" in legs.first.inner_text() and "Queue(" not in legs.first.inner_text()
    happened = legs.first.locator("td[data-label='What happened']")
    assert "PJSIP/1003" in happened.get_attribute("title")  # the channel, as a hint
    if width == "phone":  # a leg keeps its column names as a card
        assert happened.evaluate("td => getComputedStyle(td, '::before').content") == '"What happened: "'
    w.look(f"calls-{username}-legs", full_page=True)

    if username == "alice":
        w.go("/groups")
        assert "In order (hunt)" in page.inner_text("main")
        page.click("text=New group")
        page.wait_for_selector("#panel[open]")
        # Each way of ringing said in full, Asterisk's name beside it as a hint.
        choices = page.locator("#panel fieldset.strategies label")
        assert choices.count() == 6
        hunt = choices.filter(has_text="In order (hunt)")
        assert "Rings one member at a time" in hunt.inner_text() and "Asterisk: linear" in hunt.inner_text()
        w.look("groups-new-strategies")
        page.fill("#panel input[name=name]", "Night line")
        hunt.click()
        page.click("#panel button[type=submit]")
        page.wait_for_selector("tr:has-text('Night line') >> text=In order (hunt)")
