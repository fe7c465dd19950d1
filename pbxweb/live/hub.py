"""Fan-out of live changes: an in-process hub, fed across processes by PostgreSQL NOTIFY.

The listener writes the state inside `announcing(engine)`. On PostgreSQL its announcements become NOTIFYs,
delivered at commit to every process (this one included) that LISTENs — each web process runs
`listen_forever` — so nothing is published for a transaction that rolled back. Elsewhere (SQLite: one
process) they are handed to the hub after the commit.
"""

import json
import logging
from contextlib import contextmanager

import gevent
from gevent import socket as gsocket
from gevent.queue import Full, Queue

log = logging.getLogger(__name__)
CHANNEL = "pbx_live"


class Hub:
    """One queue per subscriber; publish puts on every queue and never blocks the publisher."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self.subscribers: set[Queue] = set()
        # How many messages were published so far: something rendered when it read n misses none after n.
        self.published = 0

    def subscribe(self) -> Queue:
        queue = Queue(maxsize=self.maxsize)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: Queue) -> None:
        self.subscribers.discard(queue)

    def publish(self, message: dict) -> None:
        self.published += 1
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(message)
            except Full:
                # A subscriber that fell this far behind re-reads everything rather than a partial picture.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"replace": True})


hub = Hub()


@contextmanager
def announcing(engine):
    """A transaction whose announcements reach subscribers only if it commits:
    `with announcing(engine) as (conn, announce): …; announce({...})`."""
    messages: list[dict] = []
    with engine.begin() as conn:
        yield conn, messages.append
        if conn.dialect.name == "postgresql":
            for message in messages:
                for payload in _payloads(message):
                    conn.exec_driver_sql("SELECT pg_notify(%(channel)s, %(payload)s)", {"channel": CHANNEL, "payload": payload})
    if engine.dialect.name != "postgresql":
        for message in messages:
            hub.publish(message)


# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (a thousand extensions or so).
NOTIFY_LIMIT = 7900


def _payloads(message: dict) -> list[str]:
    """The message as NOTIFY payloads: one, or for a burst of changed extensions too long for one (Asterisk
    restarted, every phone registers again) its extensions over several, the rest of it with the first."""
    payload = json.dumps(message)
    numbers = message.get("extensions") or []
    if len(payload) < NOTIFY_LIMIT or len(numbers) < 2:
        return [payload]
    half = len(numbers) // 2
    return _payloads({**message, "extensions": numbers[:half]}) + _payloads({"extensions": numbers[half:]})


def listen_forever(engine, stop=None) -> None:
    """Forward NOTIFYs on CHANNEL to this process's hub, those that arrived together as one message;
    reconnects after a database failure."""
    notifications(engine, CHANNEL, lambda payloads: hub.publish(merged([json.loads(p) for p in payloads])), stop)


# What a message lists: the extensions whose state changed, the waiting callers that came or went.
LISTS = ("extensions", "waiting")


def merged(messages: list[dict]) -> dict:
    """Several messages as one that asks for all they asked for. Under load the NOTIFYs of a few flushes
    arrive together; every open dashboard is woken, rendered for and sent to once for them, not once each."""
    if len(messages) == 1:
        return messages[0]
    one: dict = {}
    for message in messages:
        for key, value in message.items():
            if key in LISTS:
                one.setdefault(key, set()).update(value)
            else:
                one[key] = one.get(key) or value
    return {key: sorted(value) if key in LISTS else value for key, value in one.items()}


def notifications(engine, channel: str, deliver, stop=None) -> None:
    """LISTEN on `channel` and hand each batch of payloads that arrived together to `deliver`; reconnects
    after a database failure, until `stop` is set."""
    while stop is None or not stop.is_set():
        try:
            raw = engine.raw_connection()
            driver = raw.driver_connection
            # Its own connection, closed at the end rather than returned to the pool: the autocommit that
            # LISTEN needs must never leak into a request's transaction (its row locks would not hold).
            raw.detach()
            try:
                driver.autocommit = True
                with driver.cursor() as cursor:
                    cursor.execute(f"LISTEN {channel}")
                while stop is None or not stop.is_set():
                    try:
                        gsocket.wait_read(driver.fileno(), timeout=1)
                    except gsocket.timeout:
                        continue
                    driver.poll()
                    if driver.notifies:
                        payloads = [n.payload for n in driver.notifies]
                        driver.notifies.clear()
                        deliver(payloads)
            finally:
                raw.close()
        except Exception as exc:  # noqa: BLE001 — any database failure: wait, then listen again
            log.warning("live: LISTEN %s failed (%s); retrying", channel, exc)
            gevent.sleep(1)
