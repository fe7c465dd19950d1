"""The AMI listener: one per Asterisk. It keeps the state tables equal to what Asterisk says.

After every (re)connect it waits for FullyBooted, takes a snapshot (DeviceStateList, PJSIPShowContacts,
QueueStatus, CoreShowChannels, and MailboxCount for each mailbox) and replaces the stored picture with it; events that arrive meanwhile are
held and applied on top. From then on events are applied in memory and written in coalesced batches. On
PostgreSQL an advisory lock makes it the only one: another worker or a standalone `pbx ami-listen` waits
and takes over within seconds when the holder dies. A database failure restarts the whole cycle, so the
picture is re-taken from Asterisk instead of trusting what was in flight.
"""

import logging
import os
import socket
import time

import gevent
import sqlalchemy as sa
from gevent.event import Event

from ..live import hub
from ..live import store as live_store
from ..live.state import Changed, LiveState, apply_contact_rows, apply_event, state_from_snapshot
from ..realtime.schema import TABLES
from . import actions, outbox
from .client import AmiClient, AmiError, Backoff

log = logging.getLogger(__name__)

# pg_advisory_lock key: "pbx-ami" in ASCII, one listener per database (and so per Asterisk).
LOCK_KEY = 0x7062782D616D69
SNAPSHOT_ACTIONS = ("DeviceStateList", "PJSIPShowContacts", "QueueStatus", "CoreShowChannels")
# NOTIFYed by a trigger on ps_contacts (migration 5c1d7e2f9a30) with the endpoint whose contacts Asterisk wrote.
CONTACTS_CHANNEL = "pbx_contacts"
COUNTS_INTERVAL = 1.0


class Listener:
    def __init__(self, app, *, trace=None, flush_interval: float = 0.01, heartbeat_interval: float = 5.0,
                 lock_retry: float = 2.0, boot_timeout: float = 30.0, ping_interval: float = 10.0):
        self.app = app
        self.trace = trace
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.lock_retry = lock_retry
        self.boot_timeout = boot_timeout
        self.ping_interval = ping_interval
        self.state = LiveState()
        self.dirty = Changed()
        self.wake = Event()
        self.booted = Event()
        self.stopping = Event()
        self.buffering = True
        self.buffer: list = []
        self.connected = False
        # Endpoints whose ps_contacts rows changed and are still to be read.
        self.contact_endpoints: set[str] = set()
        self.contacts_due = Event()
        self.counts_due = Event()
        self.client: AmiClient | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        from ..ext import db

        with app.app_context():
            self.engine = db.engine

    # --- the outer cycle: lock, connect, listen -----------------------------------------------------------

    def run(self) -> None:
        backoff = Backoff(first=1.0, cap=30.0)
        while not self.stopping.is_set():
            try:
                with self.engine.connect() as lock_conn:
                    if not self._take_lock(lock_conn):
                        self.stopping.wait(self.lock_retry)
                        continue
                    log.info("AMI listener %s holds the lock", self.name)
                    try:
                        self._listen(lock_conn)
                    finally:
                        self._release_lock(lock_conn)
                    backoff.reset()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("AMI listener: database failed (%s); starting over", exc)
                self.stopping.wait(backoff.next())
            except Exception:  # noqa: BLE001 — whatever broke, the listener must not stay dead
                log.exception("AMI listener failed; starting over")
                self.stopping.wait(backoff.next())

    def _take_lock(self, conn) -> bool:
        if conn.dialect.name != "postgresql":
            return True  # SQLite: one process, one listener
        taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
        conn.commit()
        return bool(taken)

    def _release_lock(self, conn) -> None:
        # The lock belongs to the database session, which the pool would keep alive: give it back, or
        # drop the connection when that fails.
        if conn.dialect.name != "postgresql":
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            conn.commit()
        except sa.exc.SQLAlchemyError:
            conn.invalidate()

    def _listen(self, lock_conn) -> None:
        self._reset_connection_state()
        self.client = actions.client_for(
            self.app.config, on_event=self._on_event, on_connect=self._on_connect,
            on_disconnect=self._on_disconnect, trace=self.trace, ping_interval=self.ping_interval,
        )
        workers = [
            gevent.spawn(self.client.run),
            gevent.spawn(self._flush_forever),
            gevent.spawn(self._heartbeat_forever, lock_conn),
            gevent.spawn(self._counts_forever),
        ]
        if self.engine.dialect.name == "postgresql":
            workers += [
                gevent.spawn(hub.notifications, self.engine, CONTACTS_CHANNEL, self._on_contacts_written, self.stopping),
                gevent.spawn(self._contacts_forever),
            ]
        try:
            stopped = gevent.spawn(self.stopping.wait)
            gevent.wait([*workers, stopped], count=1)
            for worker in workers:
                if worker.dead and worker.exception is not None:
                    raise worker.exception
        finally:
            self.client.stop()
            gevent.killall(workers, timeout=5)
            self.client = None
            if self.connected:
                self._mark_stopped()

    def _mark_stopped(self) -> None:
        """Readers must not take the last picture for a live one once this listener is gone."""
        self.connected = False
        try:
            with hub.announcing(self.engine) as (conn, announce):
                live_store.set_ami_status(conn, connected=False, since=live_store.now(), retry_in=None,
                                          last_error="the AMI listener stopped", listener=None)
                announce({"ami": False})
        except sa.exc.SQLAlchemyError:
            pass  # the heartbeat stops too: readers will call the state stale

    def stop(self) -> None:
        self.stopping.set()
        if self.client is not None:
            self.client.stop()

    # --- AMI callbacks --------------------------------------------------------------------------------

    def _reset_connection_state(self) -> None:
        self.buffering = True
        self.buffer = []
        self.booted.clear()

    def _on_event(self, event) -> None:
        if event.event == "FullyBooted":
            self.booted.set()
        if self.buffering:
            self.buffer.append(event)
            return
        changed = apply_event(self.state, event)
        if changed:
            self.dirty.update(changed)
            self.wake.set()

    def _on_connect(self, client: AmiClient) -> None:
        if not self.booted.wait(timeout=self.boot_timeout):
            raise AmiError(f"Asterisk did not send FullyBooted within {self.boot_timeout:g} s")
        version = client.action("CoreSettings").get("AsteriskVersion")
        lists = {name: client.action(name).events for name in SNAPSHOT_ACTIONS}
        # No AMI list names realtime mailboxes (VoicemailUsersList shows only voicemail.conf's): ask for each.
        counts = [client.action("MailboxCount", {"Mailbox": mailbox}) for mailbox in self._mailboxes()]
        state = state_from_snapshot(
            device_states=lists["DeviceStateList"],
            contacts=lists["PJSIPShowContacts"],
            queue_status=lists["QueueStatus"],
            channels=lists["CoreShowChannels"],
            mailbox_counts=counts,
        )
        held, self.buffer = self.buffer, []
        for event in held:
            apply_event(state, event)
        self.state = state
        self.dirty = Changed()
        self.buffering = False
        with hub.announcing(self.engine) as (conn, announce):
            live_store.replace_all(conn, state)
            live_store.set_ami_status(conn, connected=True, since=live_store.now(), asterisk_version=version,
                                      last_error=None, retry_in=None, listener=self.name)
            announce({"replace": True, "ami": True})
        self.connected = True
        if self.contact_endpoints:
            self.contacts_due.set()
        log.info("AMI listener: connected to Asterisk %s, %d extensions and %d waiting calls in the snapshot",
                 version, len(state.extensions), len(state.waiting))
        # The snapshot's QueueStatus loaded every queue Asterisk did not hold, its members in interface order.
        outbox.check_ring_orders(self.engine)
        outbox.kick(self.app)

    def _mailboxes(self) -> list[str]:
        """The mailboxes Asterisk has in the realtime table, in our context, as MWI names them (1001@default)."""
        voicemail = TABLES["voicemail"]
        context = self.app.config["PBX_VOICEMAIL_CONTEXT"]
        with self.engine.connect() as conn:
            numbers = conn.execute(sa.select(voicemail.c.mailbox).where(voicemail.c.context == context)
                                   .order_by(voicemail.c.mailbox)).scalars().all()
        return [f"{number}@{context}" for number in numbers if number.isdigit()]

    def _on_disconnect(self, error: Exception, delay: float) -> None:
        was_connected, self.connected = self.connected, False
        self._reset_connection_state()
        values = {"connected": False, "last_error": str(error)[:500], "retry_in": round(delay, 1), "listener": self.name}
        if was_connected:
            values["since"] = live_store.now()
        with hub.announcing(self.engine) as (conn, announce):
            live_store.set_ami_status(conn, **values)
            announce({"ami": False})

    # --- background work ------------------------------------------------------------------------------

    def _flush_forever(self) -> None:
        while True:
            self.wake.wait()
            # Let a burst of events gather into one transaction.
            gevent.sleep(self.flush_interval)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, Changed()
        if not dirty:
            return
        try:
            with hub.announcing(self.engine) as (conn, announce):
                live_store.write_changes(conn, self.state, dirty)
                if dirty.cdr:
                    live_store.set_ami_status(conn, last_cdr_at=live_store.now())
                announce({"extensions": sorted(dirty.extensions), "waiting": sorted(dirty.waiting), "cdr": dirty.cdr})
        except sa.exc.SQLAlchemyError:
            dirty.update(self.dirty)
            self.dirty = dirty
            raise
        if dirty.extensions:
            self.counts_due.set()
        if any(uniqueid not in self.state.waiting for uniqueid in dirty.waiting):
            # A caller left: a queue rebuild held until its queue is empty may go now.
            outbox.kick(self.app)

    def _counts_forever(self) -> None:
        """Dashboards' counts by state move with nearly every event; they are told to count again at most once
        per COUNTS_INTERVAL (each process then counts once per group in view, not once per event)."""
        while True:
            self.counts_due.wait()
            self.counts_due.clear()
            with hub.announcing(self.engine) as (conn, announce):
                announce({"counts": True})
            gevent.sleep(COUNTS_INTERVAL)

    def _on_contacts_written(self, endpoints: list[str]) -> None:
        self.contact_endpoints.update(endpoints)
        self.contacts_due.set()

    def _contacts_forever(self) -> None:
        """Registration follows the rows Asterisk writes into ps_contacts, at once: read the contacts of the
        endpoints it announced, a batch at a time, and apply them like events."""
        contacts_t = TABLES["ps_contacts"]
        while True:
            self.contacts_due.wait()
            gevent.sleep(self.flush_interval)
            if self.buffering:
                # The snapshot being taken replaces everything; what arrives meanwhile is read after it.
                self.contacts_due.clear()
                continue
            self.contacts_due.clear()
            endpoints, self.contact_endpoints = self.contact_endpoints, set()
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(contacts_t.c.endpoint, contacts_t.c.uri, contacts_t.c.user_agent, contacts_t.c.expiration_time)
                    .where(contacts_t.c.endpoint.in_(sorted(endpoints)))
                ).all()
            by_endpoint = {endpoint: [] for endpoint in endpoints}
            for row in rows:
                by_endpoint[row.endpoint].append(row)
            now = time.time()
            for endpoint, endpoint_rows in by_endpoint.items():
                changed = apply_contact_rows(self.state, endpoint, endpoint_rows, now)
                if changed:
                    self.dirty.update(changed)
                    self.wake.set()

    def _heartbeat_forever(self, lock_conn) -> None:
        while True:
            # The lock lives as long as its connection: if that died, another listener may hold it now.
            lock_conn.execute(sa.text("SELECT 1"))
            lock_conn.commit()
            with self.engine.begin() as conn:
                live_store.set_ami_status(conn, listener=self.name)
            gevent.sleep(self.heartbeat_interval)


def start_in_background(app) -> Listener | None:
    """Start the listener greenlet in this (web) process unless PBX_AMI_LISTENER is off or AMI is not
    configured; on PostgreSQL also forward NOTIFYs to this process's hub."""
    from ..ext import db

    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        gevent.spawn(hub.listen_forever, engine)
    if not app.config["PBX_AMI_LISTENER"]:
        return None
    if not actions.configured(app.config):
        log.warning("AMI listener not started: AMI_USERNAME and AMI_SECRET are not set")
        return None
    listener = Listener(app)
    gevent.spawn(listener.run)
    return listener
