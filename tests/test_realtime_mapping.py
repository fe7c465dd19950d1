"""Model → Asterisk rows and the row diff, as plain functions with plain data."""

from types import SimpleNamespace as Obj

from pbxweb.realtime.diff import diff_rows
from pbxweb.realtime.mapping import RealtimeSettings, extension_rows, group_rows, trunk_rows


def extension(**overrides):
    fields = dict(number="1001", name="John Doe", email=None, sip_password="p" * 20, context="from-internal",
                  codecs="ulaw,alaw", voicemail=False, max_contacts=1, is_active=True)
    return Obj(**{**fields, **overrides})


def test_the_transport_and_voicemail_context_come_from_the_settings():
    rows = extension_rows(extension(voicemail=True), RealtimeSettings(transport="transport-tcp", voicemail_context="office"))
    assert rows["ps_endpoints"][0]["transport"] == "transport-tcp"
    assert rows["ps_endpoints"][0]["mailboxes"] == rows["ps_aors"][0]["mailboxes"] == "1001@office"
    assert rows["voicemail"] == [{"context": "office", "mailbox": "1001", "fullname": "John Doe", "email": None,
                                  "attach": "no"}]


def test_a_mailbox_row_never_carries_the_pin():
    rows = extension_rows(extension(voicemail=True, email="john@example.com"), RealtimeSettings())
    assert "password" not in rows["voicemail"][0] and rows["voicemail"][0]["attach"] == "yes"


def test_max_contacts_reaches_the_aor():
    assert extension_rows(extension(max_contacts=3), RealtimeSettings())["ps_aors"][0]["max_contacts"] == 3


def test_an_inactive_extension_has_no_rows():
    assert extension_rows(extension(is_active=False), RealtimeSettings()) == {"ps_endpoints": [], "ps_auths": [], "ps_aors": [],
                                                                                   "voicemail": []}


def test_inactive_members_are_left_out_of_the_queue():
    group = Obj(id=7, is_active=True, ring_strategy="ringall", ring_timeout=15, musicclass="default")
    members = [Obj(id=1, number="1001", name="A", penalty=0, paused=False, is_active=True),
               Obj(id=2, number="1002", name="B", penalty=0, paused=False, is_active=False)]
    rows = group_rows(group, members, RealtimeSettings())
    assert [m["interface"] for m in rows["asterisk_queue_members"]] == ["PJSIP/1001"]
    assert rows["asterisk_queues"][0]["name"] == "extgroup_7"


def test_the_queue_counts_its_service_level_within_the_sites_setting():
    group = Obj(id=7, is_active=True, ring_strategy="ringall", ring_timeout=15, musicclass="default")
    assert group_rows(group, [], RealtimeSettings(service_level=30))["asterisk_queues"][0]["servicelevel"] == 30


def test_a_trunk_without_match_is_identified_by_its_host():
    trunk = Obj(name="carrier", host="198.51.100.7", port=5060, username=None, password=None, transport="transport-udp",
                register=False, match="", context="from-external", codecs="ulaw", is_active=True)
    rows = trunk_rows(trunk, RealtimeSettings())
    assert rows["ps_endpoint_id_ips"] == [{"id": "carrier-1", "endpoint": "carrier", "match": "198.51.100.7"}]
    assert rows["ps_auths"] == [] and rows["ps_registrations"] == []
    assert rows["ps_endpoints"][0]["outbound_auth"] is None


def test_the_diff_compares_only_the_columns_we_manage():
    existing = [{"id": "1001", "context": "old", "language": "fr"}, {"id": "handmade", "context": "x"}]
    changes = diff_rows("ps_endpoints", [{"id": "1001", "context": "new"}, {"id": "1002", "context": "c"}], existing)
    assert changes.updates == [(("1001",), {"context": "new"})]
    assert changes.inserts == [{"id": "1002", "context": "c"}]
    assert changes.extras == [("handmade",)]


def test_the_diff_never_updates_the_pause_asterisk_owns():
    existing = [{"queue_name": "q", "interface": "PJSIP/1", "paused": 1, "penalty": 0}]
    desired = [{"queue_name": "q", "interface": "PJSIP/1", "paused": 0, "penalty": 0}]
    changes = diff_rows("asterisk_queue_members", desired, existing)
    assert changes.updates == [] and changes.unchanged == 1
