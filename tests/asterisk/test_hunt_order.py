"""A hunt group (Asterisk's `linear`) rings its members in the order the app lists them, on the real Asterisk:
loaded fresh with an order its interfaces would not give, and after a member is moved to the top with ↑ on
the group page while the queue is loaded. `pbx verify` compares the two orders."""

import re
import subprocess

import pytest
import sqlalchemy as sa

from .conftest import BIN, ROOT, wait_for

pytestmark = pytest.mark.asterisk

DID = "5550104"


def invites(lab, number: str) -> int:
    """INVITEs the phone has received so far (its sipp's message log)."""
    return len(re.findall(r"^INVITE sip:", (lab.workdir / f"phone-{number}.messages.log").read_text(errors="replace"),
                          re.MULTILINE))


def asterisk_order(lab, queue: str) -> list[str]:
    return [e["Location"] for e in lab.ami_action("QueueStatus", Queue=queue) if e.get("Event") == "QueueMember"]


def nothing_pending(lab) -> bool:
    with lab.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pbx_ami_outbox")).scalar() == 0


def rang(lab, name: str, caller: str) -> tuple[list[str], dict[str, int]]:
    """One outside call into the hunt group: the members Asterisk rang (AgentCalled, in order) and the INVITEs
    each phone got."""
    before = {n: invites(lab, n) for n in ("2002", "2004")}
    with lab.call(name, groups=["Hunt"]) as record:
        # The dialplan answers before Queue(): the caller stays long enough for a first member to ring out
        # (5 s), Asterisk's retry (5 s) and the next to answer (2 s).
        call = lab.outside_call(DID, caller, hang_up_after=16, log=name)
        assert call.wait(timeout=60) == 0
    got = {n: invites(lab, n) - before[n] for n in ("2002", "2004")}
    return [e["Interface"] for e in record.events("AgentCalled")], got


def verify(lab) -> str:
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "pbx", "verify"], cwd=ROOT, env=lab.environment,
                            capture_output=True, text=True, timeout=60)
    return next(line for line in result.stdout.splitlines() if "hunt groups ring in the order" in line)


def test_a_hunt_group_rings_its_members_in_the_order_the_app_shows_loaded_fresh_and_after_a_move(lab):
    # 2004 first: by their interfaces Asterisk would load 2002 first. 2004 only rings (5 s, then Asterisk's
    # retry of 5 s), 2002 answers after 2 s of ringing.
    group = lab.must("POST", "/api/groups", {"name": "Hunt", "ring_strategy": "hunt", "ring_timeout": 5,
                                             "members": [{"number": "2004"}, {"number": "2002"}]})
    lab.groups["Hunt"] = group["id"]
    queue = f"extgroup_{group['id']}"
    lab.must("POST", "/api/dids", {"number": DID, "destination_type": "group", "destination": group["id"]})
    wait_for(lambda: nothing_pending(lab), 15, "the AMI follow-ups sent")
    assert asterisk_order(lab, queue) == ["PJSIP/2004", "PJSIP/2002"]
    assert "✔" in verify(lab)

    called, got = rang(lab, "hunt-order-fresh", "0612340030")
    assert called == ["PJSIP/2004", "PJSIP/2002"] and got == {"2004": 1, "2002": 1}

    # ↑ on 2002 in the group page, while Asterisk has the queue loaded.
    browser = lab.browser()
    status, _, _ = browser.post(f"/groups/{group['id']}/members/2002/move", {"direction": "up"})
    assert status == 200
    assert [m["number"] for m in lab.must("GET", f"/api/groups/{group['id']}")["members"]] == ["2002", "2004"]
    wait_for(lambda: nothing_pending(lab), 15, "the AMI follow-ups sent")
    assert asterisk_order(lab, queue) == ["PJSIP/2002", "PJSIP/2004"]
    assert "✔" in verify(lab)

    called, got = rang(lab, "hunt-order-moved", "0612340031")
    assert called == ["PJSIP/2002"] and got == {"2004": 0, "2002": 1}
