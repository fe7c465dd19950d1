"""The pages in a real browser: Debian's chromium driven by Playwright, against the app on 127.0.0.1."""

import threading

import pytest
from werkzeug.serving import make_server

from pbxweb.auth.service import create_user

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # No sandbox as root in CI; no background traffic to hosts this machine cannot reach.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


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
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_an_admin_logs_in_and_out_in_a_real_browser(app, live_server, page):
    create_user("alice", "admin", "correct horse battery")
    page.goto(f"{live_server}/")
    assert page.url.endswith("/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Welcome, alice")
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
