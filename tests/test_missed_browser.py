"""The missed-callers panel in a real browser, on the dashboard served as in production (gunicorn, the test AMI
server answering the call-back's Originate as Asterisk did): it loads itself, calls back, shows who does to
another person's dashboard, and clears a row by hand. Screenshots at desktop and phone width."""

from .test_missed_callers import write_missed
from .conftest import PHONE

CALLERS = (  # number, name, seconds ago, seconds waited — Sales (1) unless said
    ("0612340001", "Smit Installaties", 3000, 95),
    ("0612340001", "Smit Installaties", 2400, 140),
    ("0687654321", "Marieke de Vries", 1900, 35),
    ("0201234567", '<img src=x onerror=alert(1)> "Bakkerij"', 1200, 12),
    ("anonymous", "", 700, 61),
    ("0301112233", "Garage Jansen", 300, 210),
)


def test_the_missed_callers_panel_calls_back_shows_who_and_clears_by_hand(server, person, site, ami_server, db,
                                                                         screenshots):
    with db.engine.begin() as conn:
        for index, (number, name, ago, wait) in enumerate(CALLERS):
            write_missed(conn, f"400.{index}", site["sales"], at_s=-ago, number=number, name=name, wait=wait)
        write_missed(conn, "400.9", site["support"], at_s=-500, number="0499887766", name="Support Caller", wait=48)
    ami_server.answer_from("queue-pickup-bridge.ami", "originate-1")
    admin, _ = person(server, "alice")
    panel = admin.wait_for_selector("#missed-callers .missed-list", timeout=5000)
    rows = admin.locator("#missed-callers li.missed")
    assert rows.count() == 6 and "0499887766" in rows.nth(1).inner_text()  # newest first
    assert admin.locator("#missed-callers li.missed", has_text="0612340001").inner_text().count("2 tries") == 1
    assert "<img" in panel.inner_text()  # shown as text, never run
    withheld = admin.locator("#missed-callers li.missed", has_text="Withheld number")
    assert withheld.count() == 1 and withheld.locator(".callback").count() == 0 and "anonymous" not in panel.inner_text()
    admin.screenshot(path=str(screenshots / "missed-callers-desktop.png"), full_page=True)

    admin.locator("#missed-callers li.missed", has_text="0499887766").locator(".callback").click()
    notice = admin.wait_for_selector("#missed-notice .notice", timeout=5000)
    assert "Your phone (1002) is ringing" in notice.inner_text()
    assert ami_server.actions("Originate")[-1]["Exten"] == "00499887766"
    assert "alice is calling back" in admin.locator("#missed-callers li.missed", has_text="0499887766").inner_text()
    admin.evaluate("document.getElementById('missed-callers').scrollIntoView()")
    admin.screenshot(path=str(screenshots / "missed-callers-calling-back-desktop.png"))

    agent, _ = person(server, "carl")  # Support's agent: its group's caller only, and who calls them back
    agent.wait_for_selector("#missed-callers .missed-list", timeout=5000)
    assert agent.locator("#missed-callers li.missed").count() == 1
    assert "alice is calling back" in agent.inner_text("#missed-callers")

    admin.locator("#missed-callers li.missed", has_text="Garage Jansen").locator(".done").click()
    admin.wait_for_selector("#missed-callers li.missed:has-text('Garage Jansen')", state="detached", timeout=5000)
    assert "0301112233 marked done." in admin.inner_text("#missed-notice")
    admin.set_viewport_size(PHONE)
    admin.evaluate("document.getElementById('missed-callers').scrollIntoView()")
    admin.screenshot(path=str(screenshots / "missed-callers-phone.png"))
