"""The call log and the group report replayed on what a real Asterisk 22.10.1 wrote for real calls
(tests/fixtures/asterisk/calls/: its `cdr` and `queue_log` rows, and `queue show` afterwards), loaded into the
tables as they were: what the app says must be what happened on the phones."""

import csv
import re

import pytest

from pbxweb.realtime.schema import cdr as cdr_t, queue_log as queue_log_t

from .conftest import ASTERISK_FACTS

CALLS = ASTERISK_FACTS / "calls"
SCENARIOS = ("answered", "abandoned", "timeout", "pickup", "redirect", "internal", "outbound")


def rows_of(path) -> list[dict]:
    """A captured table: every column as Asterisk wrote it, empty cells as NULL."""
    with open(path, newline="") as fh:
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.fixture
def lab(api, db, app):
    """The lab's PBX as the captures were made on it (README.md): extensions `Lab 2001`…`Lab 2004`, groups
    Sales (1), Support (2), Short (3), Back office (4); then every scenario's rows, in the site's zone UTC."""
    app.config["PBX_TIMEZONE"] = "UTC"
    for number in ("2001", "2002", "2003", "2004"):
        api.post("/api/extensions", json={"number": number, "name": f"Lab {number}"})
    for name in ("Sales", "Support", "Short", "Back office"):
        api.post("/api/groups", json={"name": name})
    with db.engine.begin() as conn:
        for scenario in SCENARIOS:
            for table, name in ((cdr_t, "cdr.csv"), (queue_log_t, "queue_log.csv")):
                if rows := rows_of(CALLS / scenario / name):
                    conn.execute(table.insert(), rows)
    return api


def story(api, scenario: str) -> dict:
    """The call of a scenario as /api/cdr tells it (its caller's uniqueid is the first CDR row's linkedid)."""
    linkedid = rows_of(CALLS / scenario / "cdr.csv")[0]["linkedid"]
    calls = api.get("/api/cdr?limit=50").get_json()["calls"]
    return next(c for c in calls if c["linkedid"] == linkedid)


def told(call: dict) -> dict:
    return {k: call[k] for k in ("outcome", "answered_by", "wait", "talk", "groups", "position", "source")}


def test_answered_is_the_member_whose_phone_answered_after_the_wait_asterisk_logged(lab):
    assert told(story(lab, "answered")) == {"outcome": "answered", "answered_by": "2002", "wait": 2, "talk": 6,
                                            "groups": [1], "position": None, "source": "queue_log"}


def test_a_caller_who_hung_up_unanswered_is_abandoned(lab):
    assert told(story(lab, "abandoned")) == {"outcome": "abandoned", "answered_by": None, "wait": 6, "talk": None,
                                             "groups": [2], "position": 1, "source": "queue_log"}


def test_a_caller_past_the_groups_wait_limit_timed_out(lab):
    """CDR says ANSWERED (the dialplan's Hangup leg after Queue() returned): the queue log says timeout."""
    assert told(story(lab, "timeout")) == {"outcome": "timeout", "answered_by": None, "wait": 5, "talk": None,
                                           "groups": [3], "position": None, "source": "queue_log"}


def test_a_pick_up_from_the_dashboard_is_answered_by_the_phone_that_picked_up(lab):
    """No CONNECT, an ABANDON under another uniqueid, and a queue leg to 2003 that says ANSWERED: the answer
    is 2002's Bridge leg (answered 4 s after the caller entered, 9 s of talk)."""
    call = story(lab, "pickup")
    assert told(call) == {"outcome": "answered", "answered_by": "2002", "wait": 4, "talk": 9, "groups": [2],
                          "position": None, "source": "queue_log"}
    assert call["picked_up"] is True and call["disposition"] == "ANSWERED"


def test_a_redirected_caller_is_redirected_then_what_happened_where_it_went(lab):
    call = story(lab, "redirect")
    assert told(call) == {"outcome": "redirected", "answered_by": None, "wait": 9, "talk": None, "groups": [2, 4],
                          "position": 1, "source": "queue_log"}
    assert call["final_outcome"] == "abandoned" and [s["outcome"] for s in call["steps"]] == ["redirected", "abandoned"]


@pytest.mark.parametrize("scenario,direction,answered_by", [("internal", "internal", "2002"), ("outbound", "outbound", None)])
def test_calls_without_a_group_keep_the_cdr_reading(lab, scenario, direction, answered_by):
    call = story(lab, scenario)
    assert (call["direction"], call["outcome"], call["answered_by"], call["talk"], call["source"]) == (
        direction, "answered", answered_by, 4, "cdr")


def test_the_call_log_page_says_it_in_words(app, lab):
    from pbxweb.auth.service import create_user

    from .test_access import signed_in

    user, _ = create_user("qa", "qa", "correct horse battery")
    page = signed_in(app, user).get("/calls").get_data(as_text=True)

    def row(scenario):
        linkedid = rows_of(CALLS / scenario / "cdr.csv")[0]["linkedid"].replace(".", "-")
        return re.sub(r"\s+", " ", page.split(f'id="call-{linkedid}"')[1].split("</tr>")[0])

    assert "Answered by 2002 after 2 s" in row("answered")
    assert "Hung up after 6 s waiting (position 1)" in row("abandoned")
    assert "Timed out after 5 s" in row("timeout")
    assert "Picked up from the dashboard by 2002 after 4 s" in row("pickup")
    assert "Redirected → Back office, hung up after 9 s waiting (position 1)" in row("redirect")
    assert "answered" not in (row("abandoned") + row("timeout") + row("redirect")).lower()


QUEUE_SHOW = re.compile(r"^(extgroup_\d+) has .* C:(\d+), A:(\d+), SL:([\d.]+)%, SL2:([\d.]+)% within (\d+)s", re.M)


def test_the_group_report_agrees_with_queue_show_for_the_same_calls(lab, app):
    """Asterisk's own counters after every scenario (each queue's last `queue show`; `servicelevel` was 0
    on the lab): calls completed, abandoned (a timeout and a pick-up among them), SL and SL2."""
    shown = {}
    for scenario in SCENARIOS:
        shown.update({m[0]: m[1:] for m in QUEUE_SHOW.findall((CALLS / scenario / "queue_show.txt").read_text())})
    app.config["PBX_SERVICE_LEVEL_SECONDS"] = int(next(iter(shown.values()))[4])
    report = lab.get("/api/calls/stats?from=2026-12-01&to=2026-12-01").get_json()
    ours = {f"extgroup_{g['group']}": (str(g["asterisk"]["answered"]), str(g["asterisk"]["abandoned"]),
                                       f"{g['service_level'] or 0:.1f}", f"{g['service_level_2'] or 0:.1f}")
            for g in report["groups"]}
    assert ours == {queue: figures[:4] for queue, figures in shown.items()}


def test_the_group_report_counts_what_happened_to_each_caller(lab):
    report = lab.get("/api/calls/stats?from=2026-12-01&to=2026-12-01").get_json()
    counted = {g["name"]: {k: g[k] for k in ("offered", "answered", "picked_up", "abandoned", "redirected", "timed_out")}
               for g in report["groups"]}
    assert counted == {
        "Sales": {"offered": 1, "answered": 1, "picked_up": 0, "abandoned": 0, "redirected": 0, "timed_out": 0},
        "Support": {"offered": 3, "answered": 1, "picked_up": 1, "abandoned": 1, "redirected": 1, "timed_out": 0},
        "Short": {"offered": 1, "answered": 0, "picked_up": 0, "abandoned": 0, "redirected": 0, "timed_out": 1},
        "Back office": {"offered": 1, "answered": 0, "picked_up": 0, "abandoned": 1, "redirected": 0, "timed_out": 0},
    }
    support = next(g for g in report["groups"] if g["name"] == "Support")
    assert (support["wait_longest"], support["wait_average"]) == (6, 4)  # 6 hung up, 4 picked up, 2 redirected
    assert support["talk_average"] == 9  # the pick-up's
    agents = {a["agent"]: a for a in report["agents"]}
    assert (agents["2002"]["answered"], agents["2002"]["talk"]) == (2, 6 + 9)  # a queue answer and a pick-up
    assert agents["2003"]["rang_unanswered"] == 1  # the timeout's RINGNOANSWER (RINGCANCELED is not one)
