"""The dashboard stays small whatever the site's size: one page of the presence grid with counts by state, a
view per viewer (an agent: its groups; staff: a group, or everyone, searchable), and pushes that carry only
what changed on the viewer's page."""

import re

import pytest
import sqlalchemy as sa

from pbxweb.auth.service import create_user
from pbxweb.live import hub, store
from pbxweb.live.state import LiveState, apply_event
from pbxweb.ami.protocol import Message
from pbxweb.models import Extension, ExtensionGroup, GroupMember, User
from pbxweb.waiting_calls import panels

from .test_access import signed_in as signed_in_as

HX = {"HX-Request": "true"}
CARD = re.compile(r'id="ext-card-(\d+)"')
EXTENSIONS = 250  # 2000…2249: groups of 50 (group 1 is 2000…2049)


@pytest.fixture
def office(db):
    """250 extensions in five groups of 50; 2000 and 2001 registered, 2001 in a call, 2002 ringing, 2003
    registered and paused in its group; the rest offline."""
    with db.engine.begin() as conn:
        conn.execute(sa.insert(Extension.__table__), [
            {"number": str(2000 + i), "name": f"Agent {2000 + i}", "sip_password": f"Pw{i:018d}xYz", "context": "from-internal",
             "codecs": "ulaw", "max_contacts": 1, "is_active": True, "voicemail": False} for i in range(EXTENSIONS)])
        conn.execute(sa.insert(ExtensionGroup.__table__), [{"id": g, "name": f"Team {g}"} for g in range(1, 6)])
        ids = dict(conn.execute(sa.select(Extension.number, Extension.id)).all())
        conn.execute(sa.insert(GroupMember.__table__), [
            {"group_id": i // 50 + 1, "extension_id": ids[str(2000 + i)], "paused": i == 3, "position": i % 50}
            for i in range(EXTENSIONS)])
    state = LiveState()
    for number, device in (("2000", "NOT_INUSE"), ("2001", "INUSE"), ("2002", "RINGING"), ("2003", "NOT_INUSE")):
        apply_event(state, Message([("Event", "ContactStatus"), ("URI", f"sip:{number}@10.0.0.5"), ("ContactStatus", "Reachable"),
                                    ("AOR", number)]))
        apply_event(state, Message([("Event", "DeviceStateChange"), ("Device", f"PJSIP/{number}"), ("State", device)]))
    with db.engine.begin() as conn:
        store.replace_all(conn, state)
        store.set_ami_status(conn, connected=True, since=store.now(), asterisk_version="22.10.1")
    return ids


def signed_in(app, username, role, extension=None):
    user, _ = create_user(username, role, "correct horse battery", extension)
    return signed_in_as(app, user)


def counts_of(page: str) -> dict[str, int]:
    block = page.split('id="presence-counts"', 1)[1].split("</div>", 1)[0]
    return {word: int(n) for word, n in re.findall(r'class="state [\w-]+">([\w ]+?) <strong class="num">(\d+)</strong>', block)}


def test_the_admins_dashboard_shows_one_page_of_everyone_with_counts_of_all(app, office):
    page = signed_in(app, "alice", "admin").get("/").get_data(as_text=True)
    cards = CARD.findall(page)
    assert cards == [str(2000 + i) for i in range(panels.PAGE_SIZE)]
    assert counts_of(page) == {"Idle": 1, "In call": 1, "Ringing": 1, "Paused": 1, "Offline": EXTENSIONS - 4}
    assert "250 extensions" in page and "Next →" in page


def test_the_next_page_carries_on_after_the_last_card(app, office):
    browser = signed_in(app, "alice", "admin")
    first = browser.get("/").get_data(as_text=True)
    next_url = re.search(r'hx-get="(/\?cursor=[^"]+)"', first).group(1)
    second = browser.get(next_url, headers=HX).get_data(as_text=True)
    assert CARD.findall(second)[0] == str(2000 + panels.PAGE_SIZE) and "← Previous" in second


def test_a_search_answers_with_the_presence_panel_and_a_socket_for_that_view(app, office):
    response = signed_in(app, "alice", "admin").get("/?q=2042", headers=HX)
    fragment = response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]
    assert fragment.lstrip().startswith('<div id="presence-view"') and '/live/ws?q=2042"' in fragment
    assert CARD.findall(fragment) == ["2042"] and 'id="waiting-calls"' not in fragment


def test_a_chosen_group_shows_its_members_and_counts_them_alone(app, office):
    page = signed_in(app, "alice", "manager").get("/?group=2").get_data(as_text=True)
    assert CARD.findall(page) == [str(2050 + i) for i in range(50)]
    assert counts_of(page) == {"Idle": 0, "In call": 0, "Ringing": 0, "Paused": 0, "Offline": 50}
    assert '/live/ws?group=2"' in page


def test_an_agent_sees_the_members_of_its_own_groups_only(app, office):
    page = signed_in(app, "carl", "agent", "2060").get("/").get_data(as_text=True)
    assert CARD.findall(page) == [str(2050 + i) for i in range(50)]
    assert signed_in(app, "dave", "agent", "2070").get("/?group=1").status_code == 200
    assert CARD.findall(signed_in(app, "erin", "agent", "2080").get("/?group=1").get_data(as_text=True)) == []


def test_a_bad_view_is_refused_naming_it(app, office):
    browser = signed_in(app, "alice", "admin")
    assert browser.get("/?group=x").status_code == 400
    assert browser.get("/?cursor=not-one").status_code == 400


def viewer(app, db, username, role, extension=None):
    create_user(username, role, "correct horse battery", extension)
    return db.session.scalar(sa.select(User).where(User.username == username))


def test_a_push_carries_only_the_changed_cards_on_the_viewers_page(app, db, office):
    user = viewer(app, db, "alice", "admin")
    with app.test_request_context("/"):
        view = panels.PresenceView()
        _, shown = panels.all_panels(user, view)
        pushed = panels.changes(user, {"extensions": ["2001", "2200"]}, view, shown)
    assert CARD.findall(pushed) == ["2001"]  # 2200 is on another page
    assert "In call" in pushed and 'hx-swap-oob="true"' in pushed


def test_a_push_reads_the_changed_cards_once_for_every_role_that_sees_every_group(app, db, office):
    """Admins, managers and QA see every group: one message's cards are read once for all of them (an agent,
    who sees its own groups, reads its own)."""
    admin, manager = viewer(app, db, "alice", "admin"), viewer(app, db, "mia", "manager")
    agent = viewer(app, db, "ann", "agent", "2001")
    statements = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        with app.test_request_context("/"):
            view = panels.PresenceView()
            message = {"extensions": ["2001"]}
            pushed = [panels.changes(user, message, view, frozenset({"2001"})) for user in (admin, manager, agent)]
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    card_reads = [s for s in statements if "pbx_extension_status" in s and "pbx_extensions.number IN" in s]
    assert all(CARD.findall(p) == ["2001"] for p in pushed)
    assert len(card_reads) == 2


def test_a_card_says_what_changed_since_it_was_last_shown_never_a_kept_rendering(app, db, office):
    browser = signed_in(app, "alice", "admin", "2000")

    def card_2001():
        page = browser.get("/").get_data(as_text=True)
        return page.split('id="ext-card-2001"', 1)[1].split("</div>", 1)[0]

    assert "Agent 2001" in card_2001() and "In call" in card_2001() and "Call 2001" in card_2001()
    with db.engine.begin() as conn:
        conn.execute(sa.update(Extension.__table__).where(Extension.number == "2001").values(name="Ann <Lee>"))
        conn.execute(sa.update(store.status_t).where(store.status_t.c.number == "2001").values(device_state="NOT_INUSE"))
    assert "Ann &lt;Lee&gt;" in card_2001() and "Idle" in card_2001() and "In call" not in card_2001()
    with db.engine.begin() as conn:
        store.set_ami_status(conn, connected=False)
    assert "last known" in card_2001()
    # The same card for a viewer without a phone: no call button.
    assert "Call 2001" not in signed_in(app, "qa", "qa").get("/").get_data(as_text=True)


def test_pushes_read_whether_asterisk_is_reachable_twice_a_second_at_most_and_at_once_when_told(app, db, office, monkeypatch):
    user = viewer(app, db, "alice", "admin")
    statements = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    monkeypatch.setattr(panels, "_read_ami_status", {"generation": 0})
    try:
        with app.test_request_context("/"):
            view = panels.PresenceView()
            for _ in range(5):
                assert "In call" in panels.changes(user, {"extensions": ["2001"]}, view, frozenset({"2001"}))
            reads = [s for s in statements if "FROM pbx_ami_status" in s]
            assert len(reads) == 1
            with db.engine.begin() as conn:
                store.set_ami_status(conn, connected=False)
            pushed = panels.changes(user, {"ami": False}, view, frozenset({"2001"}))
            reads = [s for s in statements if "FROM pbx_ami_status" in s]
            # A reconnect re-renders every panel; the card pushed right after it says so too, not the kept status.
            with db.engine.begin() as conn:
                store.set_ami_status(conn, connected=True, since=store.now())
            panels.changes(user, {"replace": True, "ami": True}, view, frozenset({"2001"}))
            after_reconnect = panels.changes(user, {"extensions": ["2001"]}, view, frozenset({"2001"}))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert len(reads) == 2 and "last known" in pushed
    assert "In call" in after_reconnect and "last known" not in after_reconnect


def test_counts_are_pushed_when_they_moved_and_not_otherwise(app, db, office):
    user = viewer(app, db, "alice", "admin")
    with app.test_request_context("/"):
        view = panels.PresenceView()
        _, shown = panels.all_panels(user, view)
        first = panels.changes(user, {"counts": True}, view, shown)
        assert 'id="presence-counts"' in first
        assert panels.changes(user, {"counts": True}, view, shown) == ""  # nothing moved since
        db.session.execute(sa.text("UPDATE pbx_extension_status SET device_state = 'INUSE' WHERE number = '2000'"))
        db.session.commit()
        moved = panels.changes(user, {"counts": True}, view, shown)
    assert counts_of(moved) == {"Idle": 0, "In call": 2, "Ringing": 1, "Paused": 1, "Offline": EXTENSIONS - 4}


def test_todays_figures_are_read_again_for_a_new_call_record(app, db, office, monkeypatch):
    user = viewer(app, db, "alice", "admin")
    read = []
    monkeypatch.setattr(panels.calls, "statistics", lambda found, since: read.append(1) or panels.calls.Statistics())
    with app.test_request_context("/"):
        view = panels.PresenceView()
        panels.today(user, fresh=True)
        panels.all_panels(user, view)
        panels.all_panels(user, view)
        assert len(read) == 1  # kept between page loads
        message = {"cdr": 1}
        panels.changes(user, message, view, frozenset())
        panels.changes(user, message, view, frozenset())
        assert len(read) == 2  # once for the new record, whoever renders it


def test_a_reconnecting_dashboard_shares_a_first_frame_begun_after_it_subscribed_and_no_older(app, db, office):
    user = viewer(app, db, "alice", "admin")
    with app.test_request_context("/"):
        view = panels.PresenceView()
        subscribed_at = hub.hub.published
        first = panels.first_frame(user, view, subscribed_at)
        assert panels.first_frame(user, view, subscribed_at) is first
        hub.hub.publish({"extensions": ["2000"]})  # a change the earlier frame may not show
        assert panels.first_frame(user, view, hub.hub.published) is not first


def test_the_statistics_page_reads_the_calls_and_the_group_report_at_most_once_in_half_a_minute(app, db, office, monkeypatch):
    from pbxweb.cdr import kept

    read, reports = [], []
    monkeypatch.setattr(kept.service, "statistics", lambda found, since: read.append(since) or kept.service.Statistics())
    group_report = kept.service.group_report
    monkeypatch.setattr(kept.service, "group_report", lambda *a: reports.append(1) or group_report(*a))
    monkeypatch.setattr(kept, "kept", kept.KeptStatistics())
    monkeypatch.setattr("pbxweb.cdr.views.kept", kept.kept)
    browser = signed_in(app, "alice", "admin")
    assert browser.get("/calls/stats?range=7days").status_code == 200
    assert browser.get("/calls/stats?range=7days").status_code == 200
    assert len(read) == 7 and len(reports) == 1  # a day at a time
    kept.kept.max_age = 0  # half a minute later: today is read again, the six days before are kept
    browser.get("/calls/stats?range=7days")
    assert len(read) == 8 and read[-1] == max(read[:7]) and len(reports) == 2


def test_reading_statistics_lets_the_worker_serve_others_meanwhile(app, db, office, monkeypatch):
    import gevent
    from datetime import datetime, timedelta, timezone

    from pbxweb.cdr import kept
    from pbxweb.realtime.schema import cdr

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(cdr), [
            {"src": "2000", "dst": "2001", "channel": f"PJSIP/2000-{i:08x}", "dstchannel": f"PJSIP/2001-{i:08x}",
             "lastapp": "Dial", "start": now - timedelta(seconds=i % 600), "end": now, "duration": 5, "billsec": 3,
             "disposition": "ANSWERED", "uniqueid": f"1.{i}", "linkedid": f"1.{i}"} for i in range(20000)])
    monkeypatch.setattr(kept.time, "sleep", gevent.sleep)  # what gevent's patch does in a worker
    others = []
    ticker = gevent.spawn(lambda: [others.append(1) or gevent.sleep(0) for _ in range(10**6)])
    try:
        from pbxweb.cdr import service

        kept.KeptStatistics().get(service.parse_filters({"range": "today"}, None))
    finally:
        ticker.kill()
    assert len(others) >= 5  # the other greenlet ran while the calls were read, not only after


def test_requests_that_ask_for_figures_nobody_kept_yet_wait_for_one_reading(app):
    """A worker just started: the first request reads the figures, the others asking meanwhile wait for it
    instead of each reading a week of calls at once."""
    import threading
    import time

    from pbxweb.cdr import kept

    figures = kept.KeptStatistics()
    reads = []

    def slow_read():
        reads.append(1)
        time.sleep(0.3)
        return {"answered": 7}

    answers = []
    askers = [threading.Thread(target=lambda: answers.append(figures.keep("week", slow_read))) for _ in range(5)]
    for asker in askers:
        asker.start()
        time.sleep(0.02)
    for asker in askers:
        asker.join(5)
    assert answers == [{"answered": 7}] * 5 and len(reads) == 1


def test_a_started_worker_has_the_week_and_today_read_before_anyone_opens_them(app, db, office, monkeypatch):
    from pbxweb.cdr import kept

    monkeypatch.setattr(kept, "kept", kept.KeptStatistics())
    monkeypatch.setattr("pbxweb.cdr.views.kept", kept.kept)
    monkeypatch.setattr("pbxweb.waiting_calls.panels.kept_statistics", kept.kept)
    kept.warm(app)
    read = []
    monkeypatch.setattr(kept.service, "statistics", lambda found, since: read.append(since) or kept.service.Statistics())
    monkeypatch.setattr(kept.service, "group_report", lambda *a: read.append("report"))
    browser = signed_in(app, "alice", "admin")
    for page in ("/calls/stats", "/calls/stats?range=today", "/"):
        assert browser.get(page).status_code == 200
    assert read == []
