"""A switch to hunt (Asterisk's `linear`) is live without a restart: a loaded queue ignores that change, so the
queue is dropped from Asterisk's memory and loaded afresh — only while nobody waits in it."""

import pytest
import sqlalchemy as sa

from pbxweb.ami import outbox
from pbxweb.models import AmiOutbox, WaitingCall, utcnow
from pbxweb.realtime.diff import TableChanges
from pbxweb.realtime.followups import REBUILD_QUEUE, followup_actions


def queues(**updates):
    return {"asterisk_queues": TableChanges("asterisk_queues", updates=[((name,), values) for name, values in updates.items()])}


def test_an_update_to_linear_needs_a_rebuild_of_that_queue():
    actions = followup_actions(queues(extgroup_3={"strategy": "linear"}), set(), sorcery_cache=False)
    assert actions == [(REBUILD_QUEUE, {"Queue": "extgroup_3"})]


def test_other_strategy_changes_and_new_queues_need_nothing():
    assert followup_actions(queues(extgroup_3={"strategy": "rrmemory"}, extgroup_4={"timeout": 30}), set(), False) == []
    inserted = {"asterisk_queues": TableChanges("asterisk_queues", inserts=[{"name": "extgroup_5", "strategy": "linear"}])}
    assert followup_actions(inserted, set(), sorcery_cache=False) == []


def pending(db):
    return [(r.action, r.fields, r.last_error) for r in db.session.query(AmiOutbox).order_by(AmiOutbox.id)]


@pytest.fixture
def sales(api, two_groups, db):
    """Sales (ringall, 1001 and 1002), with nothing pending."""
    db.session.query(AmiOutbox).delete()
    db.session.commit()
    return two_groups["sales"]


def test_switching_a_group_to_hunt_queues_a_rebuild_and_says_so(api, db, sales):
    response = api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    assert response.status_code == 200
    assert "within seconds" in response.get_json()["asterisk"]
    assert pending(db) == [(REBUILD_QUEUE, {"Queue": f"extgroup_{sales}"}, None)]


def test_a_new_hunt_group_needs_no_rebuild(api, db, sales):
    response = api.post("/api/groups", json={"name": "Night", "ring_strategy": "hunt"})
    assert response.status_code == 201 and "asterisk" not in response.get_json()
    assert pending(db) == []


def test_the_answer_says_when_callers_hold_the_switch_back(api, db, sales):
    db.session.add(WaitingCall(uniqueid="1.1", channel="PJSIP/trunk-1", linkedid="1.1", caller_number="0612345678",
                               caller_name="Caller", queue=f"extgroup_{sales}", group_id=sales, position=1, joined_at=utcnow()))
    db.session.commit()
    response = api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    assert "1 caller is waiting in this group" in response.get_json()["asterisk"]


@pytest.fixture
def ami(app, ami_server):
    app.config.update(AMI_HOST="127.0.0.1", AMI_PORT=ami_server.port, AMI_USERNAME="miniadmin", AMI_SECRET="miniadmin-secret")
    return ami_server


def queue_row(engine, name):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT strategy FROM asterisk_queues WHERE name = :n"), {"n": name}).scalar()


def test_an_empty_queue_is_dropped_and_loaded_again_with_hunt(api, app, db, ami, sales, rows):
    queue = f"extgroup_{sales}"
    api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    seen = []
    engine = db.engine  # the server's thread has no app context
    ami.on_action = lambda m: m.get("Action") == "QueueStatus" and seen.append((m.get("Queue"), queue_row(engine, queue)))
    members_before = rows("asterisk_queue_members", queue_name=queue)
    assert outbox.drain(app) == 1
    # Count the callers (none); ask with the row gone (Asterisk drops the queue); ask with it back (loaded anew);
    # ask for its members' order (the replayed answer is a ringall queue: nothing to reorder).
    assert seen == [(queue, "linear"), (queue, None), (queue, "linear"), (queue, "linear")]
    assert rows("asterisk_queue_members", queue_name=queue) == members_before
    assert pending(db) == []


def test_a_queue_with_callers_waiting_is_left_alone_until_it_is_empty(api, app, db, ami, sales, runner):
    queue = f"extgroup_{sales}"
    api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    ami.answer_from("queue-redirect.ami", "queuestatus-1")  # one caller waiting
    assert outbox.drain(app) == 0
    assert len(ami.actions("QueueStatus")) == 1 and queue_row(db.engine, queue) == "linear"
    [(action, _, held)] = pending(db)
    assert action == REBUILD_QUEUE and held.startswith(f"held: 1 caller waiting in {queue}")
    result = runner.invoke(args=["pbx", "verify"])
    assert f"held: 1 caller waiting in {queue}; the switch to hunt applies as soon as the queue is empty" in result.output

    ami.answer_from("actions.ami", "queuestatus-4")  # the caller has gone
    assert outbox.drain(app) == 1
    # The held attempt, verify's look at the ringing order, then the rebuild's four.
    assert len(ami.actions("QueueStatus")) == 6 and pending(db) == []


def test_a_failure_midway_puts_the_queue_row_back(api, app, db, ami, sales):
    queue = f"extgroup_{sales}"
    api.patch(f"/api/groups/{sales}", json={"ring_strategy": "hunt"})
    calls = []

    def drop_on_second(message):
        if message.get("Action") == "QueueStatus":
            calls.append(message)
            if len(calls) == 2:
                ami.drop()

    ami.on_action = drop_on_second
    outbox.drain(app)
    assert queue_row(db.engine, queue) == "linear"
    assert [action for action, _, _ in pending(db)] == [REBUILD_QUEUE]
