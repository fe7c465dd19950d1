"""Extension groups become Asterisk queues; their members become queue members."""

import pytest


@pytest.fixture
def extensions(api):
    for number, name in (("1001", "Ann Agent"), ("1002", "Bob Agent"), ("1003", "Cid Agent")):
        assert api.post("/api/extensions", json={"number": number, "name": name}).status_code == 201


def make_group(api, **fields):
    response = api.post("/api/groups", json={"name": "Sales", "ring_strategy": "hunt", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_group_becomes_a_queue_with_the_mapped_strategy(api, rows):
    group = make_group(api, ring_timeout=25, musicclass="jazz")
    assert rows("asterisk_queues") == [
        {"name": f"extgroup_{group['id']}", "strategy": "linear", "timeout": 25, "musiconhold": "jazz", "ringinuse": "no",
         "servicelevel": 20}
    ]


@pytest.mark.parametrize(
    "ours,asterisks",
    [("ringall", "ringall"), ("hunt", "linear"), ("memoryhunt", "rrmemory"), ("leastrecent", "leastrecent"),
     ("fewestcalls", "fewestcalls"), ("random", "random")],
)
def test_every_ring_strategy_maps_to_asterisks_name(api, rows, ours, asterisks):
    make_group(api, ring_strategy=ours)
    assert rows("asterisk_queues")[0]["strategy"] == asterisks


def test_members_become_queue_members_with_a_unique_id(api, rows, extensions):
    group = make_group(api)
    response = api.put(
        f"/api/groups/{group['id']}/members",
        json={"members": [{"number": "1001", "penalty": 0, "paused": False}, {"number": "1002", "penalty": 2, "paused": True}]},
    )
    assert response.status_code == 200
    members = rows("asterisk_queue_members")
    queue = f"extgroup_{group['id']}"
    assert [(m["queue_name"], m["interface"], m["membername"], m["penalty"], m["paused"]) for m in members] == [
        (queue, "PJSIP/1001", "1001 Ann Agent", 0, 0),
        (queue, "PJSIP/1002", "1002 Bob Agent", 2, 1),
    ]
    assert all(isinstance(m["uniqueid"], int) for m in members)
    assert len({m["uniqueid"] for m in members}) == 2


def test_replacing_members_removes_the_ones_left_out(api, rows, extensions):
    group = make_group(api)
    url = f"/api/groups/{group['id']}/members"
    api.put(url, json={"members": [{"number": "1001"}, {"number": "1002"}]})
    api.put(url, json={"members": [{"number": "1002"}, {"number": "1003"}]})
    assert [m["interface"] for m in rows("asterisk_queue_members")] == ["PJSIP/1002", "PJSIP/1003"]


def test_sync_never_reverts_a_pause_that_asterisk_wrote(api, rows, extensions, db, runner):
    group = make_group(api)
    url = f"/api/groups/{group['id']}/members"
    api.put(url, json={"members": [{"number": "1001", "penalty": 0}]})
    with db.engine.begin() as conn:  # what Asterisk does on QueuePause of a realtime member
        conn.exec_driver_sql("UPDATE asterisk_queue_members SET paused = 1")
    api.put(url, json={"members": [{"number": "1001", "penalty": 3}]})
    assert runner.invoke(args=["pbx", "sync"]).exit_code == 0
    member = rows("asterisk_queue_members")[0]
    assert member["paused"] == 1 and member["penalty"] == 3


def test_a_member_that_does_not_exist_is_refused_and_nothing_changes(api, rows, extensions, realtime_counts):
    group = make_group(api)
    url = f"/api/groups/{group['id']}/members"
    api.put(url, json={"members": [{"number": "1001"}]})
    before = realtime_counts()
    response = api.put(url, json={"members": [{"number": "1002"}, {"number": "4999"}]})
    assert response.status_code == 400
    assert "members[1].number" in response.get_json()["errors"]
    assert realtime_counts() == before
    assert [m["interface"] for m in rows("asterisk_queue_members")] == ["PJSIP/1001"]


@pytest.mark.parametrize(
    "fields,field",
    [({"ring_strategy": "roundrobin"}, "ring_strategy"), ({"name": ""}, "name"), ({"name": "Sales;Support"}, "name"),
     ({"ring_timeout": 0}, "ring_timeout"), ({"musicclass": "a;b"}, "musicclass"),
     ({"members": [{"number": "7777"}]}, "members[0].number")],
)
def test_bad_group_input_is_refused_and_writes_nothing(api, realtime_counts, extensions, fields, field):
    before = realtime_counts()
    response = api.post("/api/groups", json={"name": "Sales", **fields})
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert realtime_counts() == before
    assert api.get("/api/groups").get_json()["groups"] == []


def test_renaming_an_extension_moves_its_queue_membership(api, rows, extensions):
    group = make_group(api)
    api.put(f"/api/groups/{group['id']}/members", json={"members": [{"number": "1001"}]})
    api.patch("/api/extensions/1001", json={"number": "2001", "name": "Ann Renamed"})
    assert [(m["interface"], m["membername"]) for m in rows("asterisk_queue_members")] == [("PJSIP/2001", "2001 Ann Renamed")]


def test_a_deactivated_extension_leaves_its_queues(api, rows, extensions):
    group = make_group(api)
    api.put(f"/api/groups/{group['id']}/members", json={"members": [{"number": "1001"}, {"number": "1002"}]})
    api.patch("/api/extensions/1001", json={"is_active": False})
    assert [m["interface"] for m in rows("asterisk_queue_members")] == ["PJSIP/1002"]


def test_deleting_an_extension_removes_it_from_its_queues(api, rows, extensions):
    group = make_group(api)
    api.put(f"/api/groups/{group['id']}/members", json={"members": [{"number": "1001"}, {"number": "1002"}]})
    assert api.delete("/api/extensions/1001").status_code == 204
    assert [m["interface"] for m in rows("asterisk_queue_members")] == ["PJSIP/1002"]
    assert [m["number"] for m in api.get(f"/api/groups/{group['id']}").get_json()["members"]] == ["1002"]


def test_deactivating_and_deleting_a_group_removes_its_queue(api, rows, extensions):
    group = make_group(api)
    api.put(f"/api/groups/{group['id']}/members", json={"members": [{"number": "1001"}]})
    api.patch(f"/api/groups/{group['id']}", json={"is_active": False})
    assert rows("asterisk_queues") == [] and rows("asterisk_queue_members") == []
    api.patch(f"/api/groups/{group['id']}", json={"is_active": True})
    assert len(rows("asterisk_queues")) == 1 and len(rows("asterisk_queue_members")) == 1
    assert api.delete(f"/api/groups/{group['id']}").status_code == 204
    assert rows("asterisk_queues") == [] and rows("asterisk_queue_members") == []


def test_a_duplicate_group_name_is_a_conflict(api):
    make_group(api)
    assert api.post("/api/groups", json={"name": "Sales"}).status_code == 409
