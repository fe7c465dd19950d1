"""Two admins (or scripts) saving at the same moment: the loser gets a 404 or a 409, never a 500, and no
Asterisk row is ever left without the Mini-PBX object that owns it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from pbxweb.models import Extension, GroupMember

ROUNDS = 12


def at_once(app, headers, requests):
    """Send (method, url, json) requests from as many threads, released together; returns the responses."""
    barrier = threading.Barrier(len(requests))

    def send(request):
        method, url, body = request
        client = app.test_client()
        barrier.wait()
        return getattr(client, method)(url, json=body, headers=headers)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def extension_numbers(db) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(sa.select(Extension.number)).scalars())


def test_a_rename_racing_a_delete_leaves_no_orphan_sip_login(app, api, db, rows):
    for round_ in range(ROUNDS):
        api.post("/api/extensions", json={"number": "4000", "name": "Racer"})
        responses = at_once(app, api.headers, [
            ("patch", "/api/extensions/4000", {"number": "4001"}),
            ("delete", "/api/extensions/4000", None),
        ])
        statuses = sorted(r.status_code for r in responses)
        assert all(s in (200, 204, 404, 409) for s in statuses), (round_, statuses, [r.get_json() for r in responses])
        owned = extension_numbers(db)
        for table in ("ps_endpoints", "ps_auths", "ps_aors"):
            assert {r["id"] for r in rows(table)} == owned, (round_, table, statuses)
        for number in owned:
            api.delete(f"/api/extensions/{number}")


def test_concurrent_member_lists_serialise_and_match_asterisk(app, api, db, rows):
    numbers = [str(n) for n in range(2001, 2011)]
    for number in numbers:
        api.post("/api/extensions", json={"number": number, "name": f"Agent {number}"})
    group = api.post("/api/groups", json={"name": "Sales"}).get_json()["id"]
    requests = [
        ("put", f"/api/groups/{group}/members",
         {"members": [{"number": numbers[(i + k) % 10], "penalty": k} for k in range(1 + i % 4)]})
        for i in range(50)
    ]
    responses = at_once(app, api.headers, requests)
    assert sorted({r.status_code for r in responses}) == [200], [r.get_json() for r in responses if r.status_code != 200][:3]
    final = api.get(f"/api/groups/{group}").get_json()["members"]
    assert [m["number"] for m in final] in [[m["number"] for m in body["members"]] for _, _, body in requests]
    queue_rows = rows("asterisk_queue_members", queue_name=f"extgroup_{group}")
    assert sorted(r["interface"] for r in queue_rows) == sorted(f"PJSIP/{m['number']}" for m in final)
    with db.engine.connect() as conn:
        member_ids = set(conn.execute(sa.select(GroupMember.id).where(GroupMember.group_id == group)).scalars())
    assert {r["uniqueid"] for r in queue_rows} == member_ids


def test_deleting_an_extension_while_it_joins_a_group_leaves_no_member_row(app, api, db, rows):
    group = api.post("/api/groups", json={"name": "Sales"}).get_json()["id"]
    for round_ in range(ROUNDS):
        api.post("/api/extensions", json={"number": "3000", "name": "Joiner"})
        responses = at_once(app, api.headers, [
            ("put", f"/api/groups/{group}/members", {"members": [{"number": "3000"}]}),
            ("delete", "/api/extensions/3000", None),
        ])
        assert all(r.status_code in (200, 204, 400, 404, 409) for r in responses), [r.get_json() for r in responses]
        owned = extension_numbers(db)
        interfaces = {r["interface"] for r in rows("asterisk_queue_members")}
        assert interfaces <= {f"PJSIP/{n}" for n in owned}, round_
        for number in owned:
            api.put(f"/api/groups/{group}/members", json={"members": []})
            api.delete(f"/api/extensions/{number}")


def test_a_did_saved_while_its_extension_is_deleted_never_points_at_nothing(app, api, db, rows):
    for round_ in range(ROUNDS):
        api.post("/api/extensions", json={"number": "5000", "name": "Target"})
        responses = at_once(app, api.headers, [
            ("post", "/api/dids", {"number": "0612345678", "destination_type": "extension", "destination": "5000"}),
            ("delete", "/api/extensions/5000", None),
        ])
        assert all(r.status_code in (201, 204, 400, 409) for r in responses), [r.get_json() for r in responses]
        dids = api.get("/api/dids").get_json()["dids"]
        assert all(d["destination"] is not None for d in dids), round_
        for did in dids:
            api.delete(f"/api/dids/{did['id']}")
        api.delete("/api/extensions/5000")


def test_a_patch_of_an_extension_deleted_meanwhile_is_not_found(app, api):
    api.post("/api/extensions", json={"number": "4000", "name": "Gone"})
    responses = at_once(app, api.headers, [
        ("delete", "/api/extensions/4000", None),
        ("patch", "/api/extensions/4000", {"name": "Renamed"}),
    ])
    assert sorted(r.status_code for r in responses) in ([200, 204], [204, 404])
    assert api.patch("/api/extensions/4000", json={"name": "Again"}).status_code == 404
