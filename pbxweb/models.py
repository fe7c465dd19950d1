"""The domain: what an admin edits. Asterisk never reads these tables; pbxweb/realtime turns them into the
rows it does read, in the same transaction."""

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .ext import db

RING_STRATEGIES = ("ringall", "hunt", "memoryhunt", "leastrecent", "fewestcalls", "random")
ROLES = ("admin", "manager", "qa", "agent")
# Roles as the pages name them, with what each may do.
ROLE_NAMES = {"admin": "Administrator", "manager": "Manager", "qa": "Quality checker (QA)", "agent": "Agent"}
DESTINATION_TYPES = ("extension", "group")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class Extension(db.Model):
    __tablename__ = "pbx_extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(6), unique=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    sip_password: Mapped[str] = mapped_column(sa.String(80))
    context: Mapped[str] = mapped_column(sa.String(40))
    codecs: Mapped[str] = mapped_column(sa.String(200))
    voicemail: Mapped[bool] = mapped_column(default=False)
    max_contacts: Mapped[int] = mapped_column(default=1)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list["GroupMember"]] = relationship(
        back_populates="extension", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Extension {self.number}>"


class ExtensionGroup(db.Model):
    __tablename__ = "pbx_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    ring_strategy: Mapped[str] = mapped_column(sa.String(20), default="ringall")
    ring_timeout: Mapped[int] = mapped_column(default=20)
    musicclass: Mapped[str] = mapped_column(sa.String(80), default="default")
    max_wait: Mapped[int] = mapped_column(default=300)
    is_active: Mapped[bool] = mapped_column(default=True)

    members: Mapped[list["GroupMember"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="GroupMember.position"
    )

    @property
    def queue_name(self) -> str:
        return f"extgroup_{self.id}"


class GroupMember(db.Model):
    __tablename__ = "pbx_group_members"
    __table_args__ = (sa.UniqueConstraint("group_id", "extension_id"),)

    # Also the queue member's `uniqueid` in Asterisk, which must be a unique integer it can key updates on.
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_groups.id", ondelete="CASCADE"), index=True)
    extension_id: Mapped[int] = mapped_column(
        sa.ForeignKey("pbx_extensions.id", ondelete="CASCADE"), index=True
    )
    penalty: Mapped[int] = mapped_column(default=0)
    # Asterisk writes pause state into its queue-member row; this follows it (see the AMI listener) and
    # is written to Asterisk only when the member is first added.
    paused: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)

    group: Mapped[ExtensionGroup] = relationship(back_populates="members")
    extension: Mapped[Extension] = relationship(back_populates="memberships")


class Did(db.Model):
    __tablename__ = "pbx_dids"
    __table_args__ = (sa.Index("ix_pbx_dids_destination", "destination_type", "destination_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    destination_type: Mapped[str] = mapped_column(sa.String(20))
    destination_id: Mapped[int]
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    is_active: Mapped[bool] = mapped_column(default=True)


class Trunk(db.Model):
    __tablename__ = "pbx_trunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)
    host: Mapped[str] = mapped_column(sa.String(253))
    port: Mapped[int] = mapped_column(default=5060)
    username: Mapped[str | None] = mapped_column(sa.String(40))
    password: Mapped[str | None] = mapped_column(sa.String(80))
    transport: Mapped[str] = mapped_column(sa.String(40), default="transport-udp")
    register: Mapped[bool] = mapped_column(default=False)
    # Comma-separated IPs/CIDRs that identify inbound calls from this trunk; empty means the host.
    match: Mapped[str] = mapped_column(sa.String(400), default="")
    context: Mapped[str] = mapped_column(sa.String(40), default="from-external")
    codecs: Mapped[str] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(default=True)


class User(db.Model):
    __tablename__ = "pbx_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(20))
    extension_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pbx_extensions.id", ondelete="SET NULL"))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    extension: Mapped[Extension | None] = relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class BrowserSession(db.Model):
    """A signed-in browser (auth/sessions.py): the session lives exactly as long as this row."""

    __tablename__ = "pbx_sessions"

    # sha256 of the random key the session cookie carries: a leaked database opens no session.
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Written at most once a minute: the idle timeout counts from here.
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, index=True)

    user: Mapped[User] = relationship()


class LoginFailures(db.Model):
    """Failed sign-ins per user name and per address, in the database so every worker counts the same."""

    __tablename__ = "pbx_login_failures"

    # "user:<name>" or "addr:<ip>"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class SyncState(db.Model):
    """One row: what the last full `pbx sync` left the tables at (realtime/sync.py)."""

    __tablename__ = "pbx_sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The value of the sequence pbx_sync_changes when it committed.
    changes: Mapped[int] = mapped_column(sa.BigInteger)
    settings: Mapped[str] = mapped_column(sa.Text)
    # {table: {"unchanged": rows, "extras": [unowned row keys kept]}}
    summary: Mapped[str] = mapped_column(sa.Text)


class AuditEntry(db.Model):
    """Who changed what, when: written by pbxweb/audit.py in the same transaction as the change."""

    __tablename__ = "pbx_audit"
    __table_args__ = (sa.Index("ix_pbx_audit_at", "at"), sa.Index("ix_pbx_audit_object", "object_type", "at"))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # "user:alice" (a page), "token:alice" (the API), "cli"
    actor: Mapped[str] = mapped_column(sa.String(100), index=True)
    action: Mapped[str] = mapped_column(sa.String(10))  # create, update, delete
    object_type: Mapped[str] = mapped_column(sa.String(20))
    object_key: Mapped[str] = mapped_column(sa.String(100))
    # {field: [old, new]}; secrets as "changed"
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class PickupClaim(db.Model):
    """Who is picking up a waiting caller: one Originate per caller, however many people click at once. A
    claim lapses when the phone was not answered within its ring time."""

    __tablename__ = "pbx_pickup_claims"

    uniqueid: Mapped[str] = mapped_column(sa.String(150), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class MissedCallMark(db.Model):
    """Someone acting on a missed caller of a group (missed/service.py): calling them back, or marking them done
    by hand. Kept, with who and when; `until` is the start of the newest missed call the person saw (UTC, as the
    cdr table has it), so a caller who tries again after it is listed again."""

    __tablename__ = "pbx_missed_call_marks"
    __table_args__ = (sa.Index("ix_pbx_missed_call_marks_group_until", "group_id", "until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_groups.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(sa.String(80))
    kind: Mapped[str] = mapped_column(sa.String(10))  # "callback" or "done"
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    until: Mapped[datetime] = mapped_column(sa.DateTime())

    user: Mapped[User] = relationship()


class RateEvent(db.Model):
    """One use of something rate-limited (a click-to-call), per key, in the database so that every worker
    counts the same."""

    __tablename__ = "pbx_rate_events"
    __table_args__ = (sa.Index("ix_pbx_rate_events_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(100))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class ApiToken(db.Model):
    __tablename__ = "pbx_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_users.id", ondelete="CASCADE"), index=True)
    # sha256 of the token: a leaked database does not hand out working tokens.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # What it is for ("nightly export"), to tell it apart on the users page.
    name: Mapped[str] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Written at most once a minute.
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    user: Mapped[User] = relationship()

    @property
    def label(self) -> str:
        """How the audit log and the CLI name it: the name is not unique, the id is."""
        return f"{self.name} (#{self.id})"


class SealedData(db.Model):
    """Something handed to one user for a short while — an upload between its preview and its import, the
    SIP passwords an import generated — held here only as ciphertext whose key that user alone holds
    (pbxweb/sealed.py). Deleted when it is opened; past `expires_at` it opens no more and is deleted."""

    __tablename__ = "pbx_sealed"

    # Random, and not the key: the id alone opens nothing.
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(20))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pbx_users.id", ondelete="CASCADE"), index=True)
    # AES-GCM: the nonce, then the ciphertext and its tag.
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)


class PauseReason(db.Model):
    """A reason an agent may give for a pause ("Lunch", "After-call work"): admins keep the short list, and
    only its names ever reach Asterisk (QueuePause's Reason, then the queue log)."""

    __tablename__ = "pbx_pause_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)


class AmiOutbox(db.Model):
    """AMI actions a committed change still needs (what realtime alone cannot apply: an outbound registration
    rebuilt, a cached object expired). Written in the change's own transaction, deleted once Asterisk has
    them: a change made while AMI is down is applied when it is back."""

    __tablename__ = "pbx_ami_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    fields: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))


# --- live state, written only by the AMI listener (pbxweb/ami/listener.py) ---------------------------


class ExtensionStatus(db.Model):
    """What Asterisk last said about an extension: every web worker reads the same truth from here."""

    __tablename__ = "pbx_extension_status"

    number: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    registration: Mapped[str] = mapped_column(sa.String(12))  # registered, unreachable, offline
    device_state: Mapped[str] = mapped_column(sa.String(16))
    calls: Mapped[int] = mapped_column(default=0)
    contact_uri: Mapped[str | None] = mapped_column(sa.String(512))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    roundtrip_usec: Mapped[int | None]
    # {queue name: {"paused": bool, "reason": str, "in_call": bool}}
    queues: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Messages in its mailbox (AMI MailboxCount at the snapshot, then MessageWaiting); None: not known.
    voicemail_new: Mapped[int | None]
    voicemail_old: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class TrunkRegistration(db.Model):
    """What Asterisk last said of an outbound registration's attempt (AMI `Registry`), by its client URI
    (`sip:user@host:port`, as the event names it): every web worker shows the same state and since when."""

    __tablename__ = "pbx_trunk_registrations"

    client_uri: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    server_uri: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(40))  # Asterisk's word: Registered, Rejected, Unregistered…
    # The event's Cause: PJSIP sends none (Asterisk 22.10.1), other channel drivers may.
    cause: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class WaitingCall(db.Model):
    __tablename__ = "pbx_waiting_calls"

    uniqueid: Mapped[str] = mapped_column(sa.String(150), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(200))
    linkedid: Mapped[str] = mapped_column(sa.String(150))
    caller_number: Mapped[str] = mapped_column(sa.String(80))
    caller_name: Mapped[str] = mapped_column(sa.String(80))
    queue: Mapped[str] = mapped_column(sa.String(128), index=True)
    group_id: Mapped[int | None]
    position: Mapped[int]
    joined_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class AmiStatus(db.Model):
    """One row: whether the listener is connected to Asterisk, since when, and its heartbeat (a listener
    that died stops beating, and readers then call the state stale)."""

    __tablename__ = "pbx_ami_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    connected: Mapped[bool] = mapped_column(default=False)
    since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    asterisk_version: Mapped[str | None] = mapped_column(sa.String(40))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    retry_in: Mapped[float | None]
    heartbeat_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    listener: Mapped[str | None] = mapped_column(sa.String(200))
    # When the listener last saw a `Cdr` event (the call log's proof that Asterisk reports calls).
    last_cdr_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
