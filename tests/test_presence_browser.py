"""The bounded dashboard in a real browser, served as in production (gunicorn, the listener inside, the test AMI
server): one page of the presence grid with counts by state, search as you type and paging without a reload,
each opening the live socket for what is shown — and pushes landing on the page being looked at."""

import time

import pytest

from .conftest import PHONE

FIRST_NAMES = ("Ann", "Bob", "Chloé", "Dev", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jon")
LAST_NAMES = ("Martin", "O'Neil & Sons", "Lindqvist", "Ramos")
TEAMS = ("Billing", "Night shift", "Front desk")
CALLERS = (("0612345678", "Mrs <b>Bold</b>"), ("0201234567", "Jan \"JJ\" de Vries"), ("+31612000001", "Café Noir"),
           ("0699999999", ""), ("0301112222", "Ünal Yılmaz"), ("0207778888", "A very long caller name indeed, really"))


def device(number: str, state: str) -> bytes:
    return f"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/{number}\r\nState: {state}\r\n\r\n".encode()


def contact(number: str) -> bytes:
    return (f"Event: ContactStatus\r\nPrivilege: system,all\r\nURI: sip:{number}@10.0.0.9:5060\r\nContactStatus: Reachable\r\n"
            f"AOR: {number}\r\nEndpointName: {number}\r\nRoundtripUsec: 900\r\n\r\n").encode()


def caller_joins(index: int, number: str, name: str, queue: str) -> bytes:
    uniqueid = f"1795772400.{index}"
    return (f"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nTimestamp: {time.time() - 30 * (index + 1):.6f}\r\n"
            f"Channel: PJSIP/provider-0000010{index}\r\nCallerIDNum: {number}\r\nCallerIDName: {name}\r\nUniqueid: {uniqueid}\r\n"
            f"Linkedid: {uniqueid}\r\nQueue: {queue}\r\nPosition: {index + 1}\r\nCount: {index + 1}\r\n\r\n").encode()


@pytest.fixture
def crowd(api, site):
    """120 more extensions (2000…2119) in three more teams of 40: 123 in all, two pages of the grid."""
    numbers = [str(2000 + i) for i in range(120)]
    for i, number in enumerate(numbers):
        api.post("/api/extensions", json={"number": number, "name": f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i % 4]}"})
    for t, team in enumerate(TEAMS):
        members = [{"number": n} for n in numbers[t * 40:(t + 1) * 40]]
        assert api.post("/api/groups", json={"name": team, "members": members}).status_code == 201
    return numbers


def cards(page) -> int:
    return page.locator("#presence-grid .ext-card").count()


def test_the_grid_pages_searches_and_takes_pushes_for_the_page_shown(crowd, server, person, ami_server, screenshots):
    ami_server.push(*(contact(n) for n in ("1001", "1002", *crowd[:30])))
    ami_server.push(*(device(n, "INUSE") for n in crowd[1:8]), device("2009", "RINGING"))
    ami_server.push(*(caller_joins(i, number, name, "extgroup_1" if i % 2 else "extgroup_3")
                      for i, (number, name) in enumerate(CALLERS)))
    admin, _ = person(server, "alice")
    admin.wait_for_function("document.querySelectorAll('#waiting-calls li.waiting').length === 6", timeout=5000)
    assert cards(admin) == 100
    assert "123 extensions" in admin.inner_text("#presence-view .pager")
    admin.wait_for_function("document.querySelector('#presence-counts').innerText.replace(/\\s+/g, ' ').includes('Ringing 1')", timeout=5000)
    assert "Mrs <b>Bold</b>" in admin.inner_text("#waiting-calls")  # shown as text, never as markup
    admin.screenshot(path=str(screenshots / "dashboard-bounded-desktop.png"), full_page=True)

    admin.fill("#presence-title ~ form input[type=search], .presence-filter input[type=search]", "Lindqvist")
    admin.wait_for_function("document.querySelectorAll('#presence-grid .ext-card').length === 30", timeout=5000)
    assert "q=Lindqvist" in admin.url
    ami_server.push(device("2002", "RINGING"))  # a Lindqvist: its card is on the page shown
    admin.wait_for_selector("#ext-card-2002 .state.ringing", timeout=5000)

    admin.fill(".presence-filter input[type=search]", "")
    admin.wait_for_function("document.querySelectorAll('#presence-grid .ext-card').length === 100", timeout=5000)
    admin.click("#presence-view .pager >> text=Next →")
    admin.wait_for_selector("#ext-card-2119", timeout=5000)
    assert cards(admin) == 23 and "cursor=" in admin.url
    ami_server.push(contact("2110"), device("2110", "INUSE"))
    admin.wait_for_selector("#ext-card-2110 .state.in-call", timeout=5000)

    admin.select_option(".presence-filter select", label="Night shift")
    admin.wait_for_function("document.querySelectorAll('#presence-grid .ext-card').length === 40", timeout=5000)
    admin.wait_for_selector("#ext-card-2040")
    admin.set_viewport_size(PHONE)
    admin.screenshot(path=str(screenshots / "dashboard-bounded-phone.png"), full_page=True)


def test_an_agent_sees_its_group_and_its_counts(crowd, server, person, ami_server, screenshots):
    agent, _ = person(server, "carl")  # Support: 1003 alone
    assert cards(agent) == 1
    assert "Offline 1" in " ".join(agent.inner_text("#presence-counts").split())
    assert agent.locator(".presence-filter select").count() == 0  # one group: nothing to choose
    ami_server.push(contact("1003"))
    agent.wait_for_function("document.querySelector('#presence-counts').innerText.replace(/\\s+/g, ' ').includes('Idle 1')", timeout=5000)
    agent.set_viewport_size(PHONE)
    agent.screenshot(path=str(screenshots / "dashboard-agent-phone.png"), full_page=True)
