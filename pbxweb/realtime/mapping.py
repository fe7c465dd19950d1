"""Model → Asterisk rows, as plain functions of plain data.

Each function takes an object with the model's attributes (a model instance or a Core row) and returns
``{table name: [row dict, …]}`` holding only the columns we manage. Columns absent from a row dict are the
admin's: we never write them, so an option set by hand in SQL survives every save and every sync.
"""

from dataclasses import dataclass

STRATEGY_TO_ASTERISK = {
    "ringall": "ringall",
    "hunt": "linear",
    "memoryhunt": "rrmemory",
    "leastrecent": "leastrecent",
    "fewestcalls": "fewestcalls",
    "random": "random",
}

# Columns written only when the row is first inserted: Asterisk owns them afterwards.
INSERT_ONLY_COLUMNS = {"asterisk_queue_members": ("paused",)}

# app_queue writes a pause's reason into `reason_paused` only if, when the module loads (Asterisk's start), some
# row of the member table holds a value in that column: NULL and '' read as no such column (seen on the lab,
# Asterisk 22.10.1), and Asterisk itself writes '' into a member's row at every unpause. This row belongs to
# no queue (no queue is named so: Asterisk never loads it as a member) and always holds a value there.
REASON_PAUSED_MARKER = {
    "queue_name": "mini-pbx-marker",
    "interface": "none/reason_paused",
    "membername": "keeps app_queue writing reason_paused",
    "reason_paused": "marker",
    # Member ids (every other row's uniqueid) start at 1.
    "uniqueid": 0,
}


@dataclass(frozen=True)
class RealtimeSettings:
    transport: str = "transport-udp"
    voicemail_context: str = "default"
    service_level: int = 20

    @classmethod
    def from_config(cls, config) -> "RealtimeSettings":
        return cls(transport=config["PBX_SIP_TRANSPORT"], voicemail_context=config["PBX_VOICEMAIL_CONTEXT"],
                   service_level=config["PBX_SERVICE_LEVEL_SECONDS"])


def match_list(match: str) -> list[str]:
    return [m.strip() for m in match.split(",") if m.strip()]


def uri_host(host: str) -> str:
    """A host as it stands in a SIP URI: an IPv6 address in brackets (`sip:[2001:db8::1]:5060`)."""
    return f"[{host}]" if ":" in host else host


def callerid(name: str, number: str) -> str:
    return f'"{name}" <{number}>'


def mailbox(number: str, settings: RealtimeSettings) -> str:
    """How Asterisk names an extension's mailbox (`mailboxes`, VoiceMail(), MWI events): `1001@default`."""
    return f"{number}@{settings.voicemail_context}"


def extension_rows(extension, settings: RealtimeSettings) -> dict[str, list[dict]]:
    if not extension.is_active:
        return {"ps_endpoints": [], "ps_auths": [], "ps_aors": [], "voicemail": []}
    number = extension.number
    mailboxes = mailbox(number, settings) if extension.voicemail else None
    endpoint_row = {
        "id": number,
        "transport": settings.transport,
        "aors": number,
        "auth": number,
        "context": extension.context,
        "disallow": "all",
        "allow": extension.codecs,
        "direct_media": "no",
        "force_rport": "yes",
        "rewrite_contact": "yes",
        "callerid": callerid(extension.name, number),
        # The endpoint's `mailboxes` makes Asterisk send unsolicited NOTIFYs (the message light)…
        "mailboxes": mailboxes,
        "dtmf_mode": "rfc4733",
    }
    auth_row = {"id": number, "auth_type": "userpass", "username": number, "password": extension.sip_password}
    aor_row = {
        "id": number,
        "max_contacts": extension.max_contacts,
        "remove_existing": "yes",
        "qualify_frequency": 60,
        "default_expiration": 3600,
        # …and the AOR's answers a phone that SUBSCRIBEs for message-summary instead.
        "mailboxes": mailboxes,
    }
    return {
        "ps_endpoints": [endpoint_row],
        "ps_auths": [auth_row],
        "ps_aors": [aor_row],
        "voicemail": [voicemail_row(extension, settings)] if extension.voicemail else [],
    }


def voicemail_row(extension, settings: RealtimeSettings) -> dict:
    """The mailbox app_voicemail finds by (mailbox, context). Its `password`, the PIN, is not here: the
    extension does not hold it (Asterisk needs it in clear, and its owner may change it from the phone, which
    writes this row) — realtime/store.py writes it when the row is made and when a PIN is given."""
    return {
        "context": settings.voicemail_context,
        "mailbox": extension.number,
        "fullname": extension.name,
        "email": extension.email or None,
        # With an e-mail address the message goes out attached (voicemail.conf sets the mailer).
        "attach": "yes" if extension.email else "no",
    }


def group_rows(group, members, settings: RealtimeSettings) -> dict[str, list[dict]]:
    """`members`: objects with the member's id, penalty, paused, and its extension's number, name and
    is_active (in the order they ring)."""
    if not group.is_active:
        return {"asterisk_queues": [], "asterisk_queue_members": []}
    queue_name = f"extgroup_{group.id}"
    queue_row = {
        "name": queue_name,
        "strategy": STRATEGY_TO_ASTERISK[group.ring_strategy],
        "timeout": group.ring_timeout,
        "musiconhold": group.musicclass,
        # An agent already on a call is not rung again, and a caller who is also a member is not rung.
        "ringinuse": "no",
        # Asterisk's SL/SL2 (`queue show`) count calls answered (and abandoned) within this many seconds: the
        # same threshold as the app's group report, so that the two agree.
        "servicelevel": settings.service_level,
    }
    member_rows = [
        {
            "queue_name": queue_name,
            "interface": f"PJSIP/{m.number}",
            # Asterisk logs the member by this name in the queue log (CONNECT, RINGNOANSWER, PAUSE…, whatever
            # log_membername_as_agent says): the number first tells the call log and the report which phone it
            # was, whatever the name became since or how many share it.
            "membername": f"{m.number} {m.name}",
            "state_interface": f"PJSIP/{m.number}",
            "penalty": m.penalty,
            "paused": 1 if m.paused else 0,
            "uniqueid": m.id,
        }
        for m in members
        if m.is_active
    ]
    return {"asterisk_queues": [queue_row], "asterisk_queue_members": member_rows}


def marker_rows() -> dict[str, list[dict]]:
    """Rows that no model owns but Asterisk needs to find (REASON_PAUSED_MARKER)."""
    return {"asterisk_queue_members": [dict(REASON_PAUSED_MARKER)]}


def registration_client_uri(trunk) -> str:
    """The client URI of a trunk's outbound registration: how Asterisk's `Registry` events name it."""
    return f"sip:{trunk.username}@{uri_host(trunk.host)}:{trunk.port}"


def trunk_rows(trunk, settings: RealtimeSettings) -> dict[str, list[dict]]:
    tables = ("ps_endpoints", "ps_auths", "ps_aors", "ps_registrations", "ps_endpoint_id_ips")
    if not trunk.is_active:
        return {t: [] for t in tables}
    name = trunk.name
    host = uri_host(trunk.host)
    server = f"sip:{host}:{trunk.port}"
    has_auth = bool(trunk.username)
    endpoint_row = {
        "id": name,
        "transport": trunk.transport,
        "aors": name,
        "context": trunk.context,
        "disallow": "all",
        "allow": trunk.codecs,
        "outbound_auth": name if has_auth else None,
        "from_user": trunk.username or None,
        "from_domain": host if len(host) <= 40 else None,
        "direct_media": "no",
        "rewrite_contact": "yes",
        "dtmf_mode": "rfc4733",
    }
    auth_rows = (
        [{"id": name, "auth_type": "userpass", "username": trunk.username, "password": trunk.password}]
        if has_auth
        else []
    )
    aor_row = {"id": name, "contact": server, "qualify_frequency": 60}
    registration_rows = (
        [
            {
                "id": name,
                "server_uri": server,
                "client_uri": registration_client_uri(trunk),
                "contact_user": trunk.username,
                "outbound_auth": name,
                "transport": trunk.transport,
                "endpoint": name,
                "line": "yes",
                "expiration": 3600,
                "retry_interval": 60,
                "forbidden_retry_interval": 600,
                "max_retries": 10000,
            }
        ]
        if trunk.register and has_auth
        else []
    )
    identify_rows = [
        {"id": f"{name}-{i}", "endpoint": name, "match": match}
        for i, match in enumerate(match_list(trunk.match) or [trunk.host], start=1)
    ]
    return {
        "ps_endpoints": [endpoint_row],
        "ps_auths": auth_rows,
        "ps_aors": [aor_row],
        "ps_registrations": registration_rows,
        "ps_endpoint_id_ips": identify_rows,
    }


def did_rows(did, destination: str | None, destination_active: bool) -> dict[str, list[dict]]:
    """`destination`: the extension's number or the group's id; None when it no longer exists."""
    if destination is None:
        return {"dids": []}
    return {
        "dids": [
            {
                "number": did.number,
                "destination_type": did.destination_type,
                "destination": destination,
                "description": did.description or None,
                "is_active": bool(did.is_active and destination_active),
            }
        ]
    }
