"""A hunt group rings its members in the order the app lists them. Asterisk keeps a `linear` queue's members
in a list: loaded fresh in the order of their interfaces (res_config_odbc's ORDER BY), a member it finds later
appended, a reordering of the rows ignored (seen on the lab, tests/asterisk/test_hunt_order.py). The app takes
the members out of place out and puts them back in its order."""

import pytest
import sqlalchemy as sa

from pbxweb.ami import outbox
from pbxweb.models import AmiOutbox, WaitingCall, utcnow
from pbxweb.realtime.diff import TableChanges
from pbxweb.realtime.followups import ORDER_QUEUE, REBUILD_QUEUE, followup_actions
from pbxweb.realtime.ring_order import reorder_plan, reported_ring_order, ring_order_mismatches, wanted_ring_orders


# --- the pure rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("current, wanted, moving", [
    (["A", "B"], ["A", "B"], []),
    (["A", "B"], ["B", "A"], ["A"]),              # B stays: the queue is never empty of those to ring first
    (["A", "B", "C"], ["C", "B", "A"], ["B", "A"]),
    (["A", "B", "C"], ["A", "C", "B"], ["B"]),
    (["A"], ["A", "B"], ["B"]),                   # a member Asterisk has not loaded yet
    (["A", "X", "B"], ["A", "B"], []),            # a member of no model (its row is someone else's) stays
    ([], [], []),
])
def test_the_members_out_of_place_are_moved_and_the_longest_beginning_in_place_stays(current, wanted, moving):
    assert reorder_plan(current, wanted) == moving


def test_the_order_asterisk_rings_is_its_queue_member_list():
    events = [{"Event": "QueueParams", "Queue": "extgroup_3", "Strategy": "linear"},
              {"Event": "QueueMember", "Queue": "extgroup_3", "Location": "PJSIP/2102"},
              {"Event": "QueueEntry", "Queue": "extgroup_3", "Position": "1"},
              {"Event": "QueueMember", "Queue": "extgroup_3", "Location": "PJSIP/2004"}]
    assert reported_ring_order(events) == ("linear", ["PJSIP/2102", "PJSIP/2004"])
    assert reported_ring_order([]) == (None, [])  # a queue Asterisk does not know


def test_only_hunt_queues_have_an_order_to_keep():
    queues = [{"name": "extgroup_1", "strategy": "linear"}, {"name": "extgroup_2", "strategy": "ringall"}]
    members = [{"queue_name": "extgroup_1", "interface": "PJSIP/2102"}, {"queue_name": "extgroup_2", "interface": "PJSIP/1"},
               {"queue_name": "extgroup_1", "interface": "PJSIP/2004"}]
    assert wanted_ring_orders(queues, members) == {"extgroup_1": ["PJSIP/2102", "PJSIP/2004"]}


def test_verify_names_a_hunt_queue_asterisk_rings_in_another_order():
    wanted = {"extgroup_1": ["PJSIP/2102", "PJSIP/2004"], "extgroup_2": ["PJSIP/1"], "extgroup_3": ["PJSIP/7"]}
    reported = {"extgroup_1": ("linear", ["PJSIP/2004", "PJSIP/2102"]), "extgroup_2": ("linear", ["PJSIP/1"]),
                # still ringall in Asterisk's memory: the pending switch to hunt, which verify lists apart
                "extgroup_3": ("ringall", [])}
    assert ring_order_mismatches(wanted, reported) == [
        "extgroup_1 rings PJSIP/2004, PJSIP/2102; the app lists PJSIP/2102, PJSIP/2004"]


def test_a_moved_member_needs_an_order_check_unless_the_queue_is_rebuilt_anyway():
    assert followup_actions({}, set(), False, {"extgroup_4", "extgroup_3"}) == [
        (ORDER_QUEUE, {"Queue": "extgroup_3"}), (ORDER_QUEUE, {"Queue": "extgroup_4"})]
    switched = {"asterisk_queues": TableChanges("asterisk_queues", updates=[(("extgroup_3",), {"strategy": "linear"})])}
    assert followup_actions(switched, set(), False, {"extgroup_3"}) == [(REBUILD_QUEUE, {"Queue": "extgroup_3"})]


# --- what a change leaves for AMI ----------------------------------------------------------------------


def pending(db):
    return [(r.action, r.fields) for r in db.session.query(AmiOutbox).order_by(AmiOutbox.id)]


@pytest.fixture
def hunt(api, two_groups, db):
    """Sales as a hunt group (1001, then 1002), with nothing pending."""
    sales = two_groups["sales"]
    api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    db.session.query(AmiOutbox).delete()
    db.session.commit()
    return sales


def test_moving_a_member_of_a_hunt_group_queues_an_order_check(api, db, hunt, client):
    api.put(f"/api/groups/{hunt}/members", json={"members": [{"number": "1002"}, {"number": "1001"}]})
    assert pending(db) == [(ORDER_QUEUE, {"Queue": f"extgroup_{hunt}"})]


def test_adding_a_member_to_a_hunt_group_queues_an_order_check(api, db, hunt):
    api.put(f"/api/groups/{hunt}/members", json={"members": [{"number": "1003"}, {"number": "1001"}, {"number": "1002"}]})
    assert pending(db) == [(ORDER_QUEUE, {"Queue": f"extgroup_{hunt}"})]


def test_a_ring_all_group_has_no_order_to_keep(api, db, two_groups):
    db.session.query(AmiOutbox).delete()
    db.session.commit()
    api.put(f"/api/groups/{two_groups['sales']}/members", json={"members": [{"number": "1002"}, {"number": "1001"}]})
    assert pending(db) == []


# --- carried out on an Asterisk that behaves as the lab's ----------------------------------------------


class LinearQueue:
    """The fake AMI server answers QueueStatus for one queue as Asterisk 22 would: each lookup reads the member
    rows, drops the members whose row is gone and appends the new ones in interface order."""

    def __init__(self, ami, engine, queue: str, loaded: list[str], callers: int = 0):
        self.engine, self.queue, self.members, self.callers = engine, queue, list(loaded), callers
        ami.on_action = self.on_action
        self.ami = ami

    def on_action(self, message):
        if message.get("Action") != "QueueStatus":
            return
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT interface FROM asterisk_queue_members WHERE queue_name = :q "
                                        "ORDER BY interface"), {"q": self.queue}).scalars().all()
        self.members = [m for m in self.members if m in rows] + [r for r in rows if r not in self.members]
        events = [f"Event: QueueParams\r\nQueue: {self.queue}\r\nStrategy: linear\r\nActionID: x\r\n\r\n"]
        events += [f"Event: QueueMember\r\nQueue: {self.queue}\r\nLocation: {m}\r\nActionID: x\r\n\r\n" for m in self.members]
        events += [f"Event: QueueEntry\r\nQueue: {self.queue}\r\nPosition: {n + 1}\r\nActionID: x\r\n\r\n"
                   for n in range(self.callers)]
        answer = ("Response: Success\r\nActionID: x\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n"
                  + "".join(events)
                  + f"Event: QueueStatusComplete\r\nActionID: x\r\nEventList: Complete\r\nListItems: {len(events)}\r\n\r\n")
        self.ami.responses["QueueStatus"] = ("x", [answer.encode()])


@pytest.fixture
def ami(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME="miniadmin", AMI_SECRET="miniadmin-secret")
    return ami_server


def test_the_outbox_puts_a_loaded_hunt_queue_in_the_apps_order_keeping_the_pause_asterisk_wrote(api, app, db, ami, hunt, rows, runner):
    queue = f"extgroup_{hunt}"
    asterisk = LinearQueue(ami, db.engine, queue, loaded=["PJSIP/1001", "PJSIP/1002"])
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE asterisk_queue_members SET paused = 1, reason_paused = 'Lunch' "
                             "WHERE interface = 'PJSIP/1001'"))
    api.put(f"/api/groups/{hunt}/members", json={"members": [{"number": "1002"}, {"number": "1001"}]})
    assert outbox.drain(app) == 1
    assert asterisk.members == ["PJSIP/1002", "PJSIP/1001"] and pending(db) == []
    member = rows("asterisk_queue_members", interface="PJSIP/1001")[0]
    assert (member["paused"], member["reason_paused"]) == (1, "Lunch")
    assert "✔ hunt groups ring in the order the app shows" in runner.invoke(args=["pbx", "verify"]).output


def test_a_hunt_queue_with_a_caller_waiting_keeps_its_order_until_it_is_empty(api, app, db, ami, hunt, runner):
    queue = f"extgroup_{hunt}"
    asterisk = LinearQueue(ami, db.engine, queue, loaded=["PJSIP/1001", "PJSIP/1002"], callers=1)
    api.put(f"/api/groups/{hunt}/members", json={"members": [{"number": "1002"}, {"number": "1001"}]})
    assert outbox.drain(app) == 0
    assert asterisk.members == ["PJSIP/1001", "PJSIP/1002"]
    verify = runner.invoke(args=["pbx", "verify"]).output
    assert f"✘ hunt groups ring in the order the app shows — {queue} rings PJSIP/1001, PJSIP/1002; the app lists " \
           "PJSIP/1002, PJSIP/1001" in verify
    assert "its new ringing order applies as soon as the queue is empty" in verify
    asterisk.callers = 0
    assert outbox.drain(app) == 1
    assert asterisk.members == ["PJSIP/1002", "PJSIP/1001"]


def test_after_a_reconnect_every_hunt_queue_is_checked_once(app, db, hunt, two_groups):
    outbox.check_ring_orders(db.engine)
    outbox.check_ring_orders(db.engine)
    assert pending(db) == [(ORDER_QUEUE, {"Queue": f"extgroup_{hunt}"})]
