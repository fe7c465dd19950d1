"""The live picture Asterisk's events describe, and the reducers that change it — no I/O here.

`apply_event(state, event)` changes the state in place and returns what changed (extension numbers, waiting
calls' uniqueids, …) so that the listener writes and publishes only that. `state_from_snapshot(…)` builds
a whole new picture from the answers to DeviceStateList, PJSIPShowContacts, QueueStatus and
CoreShowChannels, which replaces the old one after every (re)connect: nothing is merged, so no ghost
survives a restart of Asterisk or of the listener.
"""

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# PJSIP/1001 or PJSIP/1001-0000002a → 1001. Only what looks like one of our extensions counts.
PJSIP_NAME = re.compile(r"PJSIP/(\d{2,6})(?:-[0-9a-f]+)?$")
QUEUE_NAME = re.compile(r"extgroup_(\d+)$")
# 1001@default → 1001: a mailbox as MWI events and MailboxCount name it.
MAILBOX = re.compile(r"(\d{2,6})@[A-Za-z0-9_-]+")
# "Registered": a contact row Asterisk wrote at REGISTER, not yet qualified (AMI tells that later, or never).
CONTACT_UP = ("Registered", "Created", "Reachable", "NonQualified", "Updated", "Unknown")
HEX_ESCAPE = re.compile(r"\^([0-9A-Fa-f]{2})")


def extension_of(name: str | None) -> str | None:
    match = PJSIP_NAME.match(name or "")
    return match.group(1) if match else None


def group_of(queue: str | None) -> int | None:
    match = QUEUE_NAME.match(queue or "")
    return int(match.group(1)) if match else None


@dataclass
class Contact:
    uri: str
    status: str
    user_agent: str | None = None
    roundtrip_usec: int | None = None


@dataclass
class QueueMembership:
    paused: bool = False
    reason: str = ""
    in_call: bool = False
    status: int = 0
    # When the pause began (Asterisk's LastPause, epoch seconds); None while not paused.
    paused_since: float | None = None


@dataclass
class Mailbox:
    new: int = 0
    old: int = 0


@dataclass
class ExtensionStatus:
    number: str
    device_state: str = "UNKNOWN"
    peer_status: str | None = None
    contacts: dict[str, Contact] = field(default_factory=dict)
    channels: set[str] = field(default_factory=set)
    queues: dict[str, QueueMembership] = field(default_factory=dict)
    mailbox: Mailbox | None = None

    @property
    def registration(self) -> str:
        """registered, unreachable or offline."""
        if any(c.status in CONTACT_UP for c in self.contacts.values()):
            return "registered"
        if self.contacts:
            return "unreachable"
        if self.peer_status == "Reachable":
            return "registered"
        return "offline"

    @property
    def contact(self) -> Contact | None:
        """The contact to show: a reachable one first."""
        ranked = sorted(self.contacts.values(), key=lambda c: (c.status not in CONTACT_UP, c.uri))
        return ranked[0] if ranked else None


@dataclass
class WaitingCall:
    uniqueid: str
    channel: str
    linkedid: str
    caller_number: str
    caller_name: str
    queue: str
    position: int
    joined_at: float

    @property
    def group_id(self) -> int | None:
        return group_of(self.queue)


@dataclass
class Registration:
    """An outbound registration's last outcome, as a `Registry` event told it."""

    client_uri: str
    server_uri: str
    status: str
    cause: str
    at: float


@dataclass
class Changed:
    extensions: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    # (queue, extension number, paused, reason): Asterisk paused or unpaused a member.
    pauses: list[tuple[str, str, bool, str]] = field(default_factory=list)
    cdr: int = 0
    # Client URIs of outbound registrations whose outcome Asterisk reported.
    registrations: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.extensions or self.waiting or self.pauses or self.cdr or self.registrations)

    def update(self, other: "Changed") -> None:
        self.extensions |= other.extensions
        self.waiting |= other.waiting
        self.pauses += other.pauses
        self.cdr += other.cdr
        self.registrations |= other.registrations


@dataclass
class LiveState:
    extensions: dict[str, ExtensionStatus] = field(default_factory=dict)
    waiting: dict[str, WaitingCall] = field(default_factory=dict)
    # By client URI. Not part of a snapshot: each attempt's outcome is reported as it happens, and a stored
    # one stays true until the next (whose event replaces it).
    registrations: dict[str, Registration] = field(default_factory=dict)

    def extension(self, number: str) -> ExtensionStatus:
        status = self.extensions.get(number)
        if status is None:
            status = self.extensions[number] = ExtensionStatus(number)
        return status


def _clean(value: str | None) -> str:
    return "" if value in (None, "<unknown>", "unknown") else value


def _event_time(event) -> float:
    """Asterisk's own time of the event (timestampevents=yes), else now."""
    try:
        return float(event.get("Timestamp"))
    except (TypeError, ValueError):
        return time.time()


def _renumber(state: LiveState, queue: str, changed: Changed) -> None:
    """Positions 1..n in each queue, in the order callers joined, after someone left."""
    callers = sorted((c for c in state.waiting.values() if c.queue == queue), key=lambda c: (c.position, c.joined_at))
    for position, caller in enumerate(callers, start=1):
        if caller.position != position:
            caller.position = position
            changed.waiting.add(caller.uniqueid)


def _remove_waiting(state: LiveState, uniqueid: str | None, changed: Changed) -> None:
    caller = state.waiting.pop(uniqueid or "", None)
    if caller is not None:
        changed.waiting.add(caller.uniqueid)
        _renumber(state, caller.queue, changed)


def _contact_status(state, event, changed):
    number = event.get("AOR") or event.get("EndpointName")
    if not (number and number.isdigit()):
        return
    status = state.extension(number)
    uri = event.get("URI") or ""
    kind = event.get("ContactStatus")
    if kind == "Removed":
        status.contacts.pop(uri, None)
    else:
        contact = status.contacts.get(uri) or Contact(uri, kind)
        contact.status = kind
        if event.get("RoundtripUsec", "").isdigit():
            contact.roundtrip_usec = int(event["RoundtripUsec"])
        status.contacts[uri] = contact
    changed.extensions.add(number)


def _peer_status(state, event, changed):
    number = extension_of(event.get("Peer"))
    if number:
        state.extension(number).peer_status = event.get("PeerStatus")
        changed.extensions.add(number)


def _device_state(state, event, changed):
    number = extension_of(event.get("Device"))
    if number:
        state.extension(number).device_state = event.get("State") or "UNKNOWN"
        changed.extensions.add(number)


def _new_channel(state, event, changed):
    number = extension_of(event.get("Channel"))
    if number:
        state.extension(number).channels.add(event["Channel"])
        changed.extensions.add(number)


def _hangup(state, event, changed):
    number = extension_of(event.get("Channel"))
    if number and number in state.extensions:
        state.extensions[number].channels.discard(event["Channel"])
        changed.extensions.add(number)
    _remove_waiting(state, event.get("Uniqueid"), changed)


def _queue_member(state, event, changed):
    number = extension_of(event.get("Interface") or event.get("Location"))
    queue = event.get("Queue")
    if not number or not queue:
        return
    status = state.extension(number)
    membership = status.queues.setdefault(queue, QueueMembership())
    paused = event.get("Paused") == "1"
    reason = event.get("PausedReason") or ""
    if event.event == "QueueMemberPause" or paused != membership.paused:
        changed.pauses.append((queue, number, paused, reason))
    if paused:
        # LastPause is Asterisk's own time of the (latest) pause; without it, when we first heard of it.
        last_pause = _count(event.get("LastPause"))
        membership.paused_since = float(last_pause) if last_pause else (membership.paused_since or _event_time(event))
    else:
        membership.paused_since = None
    membership.paused = paused
    membership.reason = reason
    membership.in_call = event.get("InCall") == "1"
    membership.status = int(event.get("Status") or 0)
    changed.extensions.add(number)


def _queue_member_removed(state, event, changed):
    number = extension_of(event.get("Interface"))
    if number and number in state.extensions:
        state.extensions[number].queues.pop(event.get("Queue"), None)
        changed.extensions.add(number)


def _waiting_call(event, joined_at: float) -> WaitingCall:
    """From a QueueCallerJoin event or a QueueEntry of QueueStatus (which has no Linkedid)."""
    uniqueid = event.get("Uniqueid")
    return WaitingCall(
        uniqueid=uniqueid,
        channel=event.get("Channel") or "",
        linkedid=event.get("Linkedid") or uniqueid,
        caller_number=_clean(event.get("CallerIDNum")),
        caller_name=_clean(event.get("CallerIDName")),
        queue=event.get("Queue") or "",
        position=int(event.get("Position") or 0),
        joined_at=joined_at,
    )


def _caller_join(state, event, changed):
    if event.get("Uniqueid"):
        call = state.waiting[event["Uniqueid"]] = _waiting_call(event, _event_time(event))
        changed.waiting.add(call.uniqueid)


def _caller_gone(state, event, changed):
    _remove_waiting(state, event.get("Uniqueid"), changed)


def _count(value) -> int:
    text = (value or "").strip()
    return int(text) if text.isdigit() else 0


def _mailbox_counts(state, mailbox: str | None, new, old, changed) -> None:
    match = MAILBOX.fullmatch(mailbox or "")
    if match:
        number = match.group(1)
        state.extension(number).mailbox = Mailbox(_count(new), _count(old))
        changed.extensions.add(number)


def _message_waiting(state, event, changed):
    """Asterisk's MWI: a message left, heard or deleted (and after a VoicemailRefresh)."""
    _mailbox_counts(state, event.get("Mailbox"), event.get("New"), event.get("Old"), changed)


def _cdr(state, event, changed):
    changed.cdr += 1


def _registry(state, event, changed):
    """An outbound registration attempt's outcome (res_pjsip_outbound_registration sends one per REGISTER
    transaction that ends: `Registered`, `Rejected` on a timeout or a refusal, `Unregistered`). PJSIP names
    the registration by its client and server URIs only, and gives no Cause (Asterisk 22.10.1: the reason,
    such as "No response received", is only in its log)."""
    client_uri, status = event.get("Username"), event.get("Status")
    if (event.get("ChannelType") or "").upper() != "PJSIP" or not client_uri or not status:
        return
    state.registrations[client_uri] = Registration(client_uri, event.get("Domain") or "", status,
                                                   event.get("Cause") or "", _event_time(event))
    changed.registrations.add(client_uri)


REDUCERS = {
    "ContactStatus": _contact_status,
    "PeerStatus": _peer_status,
    "DeviceStateChange": _device_state,
    "Newchannel": _new_channel,
    "Hangup": _hangup,
    "QueueMemberStatus": _queue_member,
    "QueueMemberPause": _queue_member,
    "QueueMemberAdded": _queue_member,
    "QueueMemberRemoved": _queue_member_removed,
    "QueueCallerJoin": _caller_join,
    "QueueCallerLeave": _caller_gone,
    "QueueCallerAbandon": _caller_gone,
    "AgentConnect": _caller_gone,
    # A caller picked out of the queue by an Originate/Bridge gets no Leave event: entering any bridge
    # means it is no longer waiting.
    "BridgeEnter": _caller_gone,
    "MessageWaiting": _message_waiting,
    "Cdr": _cdr,
    "Registry": _registry,
}


def apply_event(state: LiveState, event) -> Changed:
    changed = Changed()
    reducer = REDUCERS.get(event.event or "")
    if reducer is not None and event.get("ActionID") is None:
        reducer(state, event, changed)
    return changed


def realtime_text(value: str) -> str:
    """A value as Asterisk reads it from a realtime row: `^XX` escapes decoded (`^3B` is `;`)."""
    return HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def apply_contact_rows(state: LiveState, endpoint: str, rows: Iterable, now: float) -> Changed:
    """The contacts of one endpoint as Asterisk wrote them into ps_contacts (objects with uri, user_agent,
    expiration_time): the truth of who is registered, the moment Asterisk writes it (AMI reports a new
    contact only at its first qualify, and nothing at all behind a sorcery cache). A contact AMI already
    knows keeps its reachability; one without a live row is gone."""
    changed = Changed()
    if not endpoint.isdigit():
        return changed
    live = {realtime_text(r.uri or ""): r for r in rows if r.expiration_time is None or int(r.expiration_time) > now}
    if not live and endpoint not in state.extensions:
        return changed
    status = state.extension(endpoint)
    contacts = {}
    for uri, row in live.items():
        known = status.contacts.get(uri)
        contacts[uri] = (replace(known, user_agent=row.user_agent or known.user_agent) if known
                         else Contact(uri, "Registered", user_agent=row.user_agent))
    if contacts != status.contacts:
        status.contacts = contacts
        changed.extensions.add(endpoint)
    return changed


def state_from_snapshot(
    device_states: Iterable, contacts: Iterable, queue_status: Iterable, channels: Iterable, now: float | None = None,
    mailbox_counts: Iterable = (),
) -> LiveState:
    """A whole picture from the snapshot actions' list events, and the answers to MailboxCount (one per
    mailbox: Asterisk lists no realtime mailboxes)."""
    now = time.time() if now is None else now
    state = LiveState()
    changed = Changed()
    for event in device_states:
        _device_state(state, event, changed)
    for event in contacts:
        number = event.get("Endpoint") or event.get("Aor")
        if not (number and number.isdigit()):
            continue
        rtt = event.get("RoundtripUsec") or ""
        state.extension(number).contacts[event.get("Uri") or ""] = Contact(
            uri=event.get("Uri") or "",
            status=event.get("Status") or "Unknown",
            user_agent=event.get("UserAgent") or None,
            roundtrip_usec=int(rtt) if rtt.isdigit() else None,
        )
    for event in queue_status:
        if event.event == "QueueMember":
            _queue_member(state, event, changed)
        elif event.event == "QueueEntry" and event.get("Uniqueid"):
            state.waiting[event["Uniqueid"]] = _waiting_call(event, now - int(event.get("Wait") or 0))
    for event in channels:
        number = extension_of(event.get("Channel"))
        if number:
            state.extension(number).channels.add(event["Channel"])
        caller = state.waiting.get(event.get("Uniqueid") or "")
        if caller is not None and event.get("Linkedid"):
            caller.linkedid = event["Linkedid"]
    for response in mailbox_counts:
        if response.response == "Success":
            _mailbox_counts(state, response.get("Mailbox"), response.get("NewMessages"), response.get("OldMessages"), changed)
    return state
