"""A gevent-native AMI client: one reader greenlet per connection, actions correlated by ActionID, event lists
collected, a keep-alive Ping, and reconnection with jittered exponential backoff.

It uses gevent's sockets directly, so it cooperates with other greenlets whether or not the process is
monkey-patched (the `flask` commands are not; gunicorn's gevent worker is).
"""

import itertools
import logging
import random
import time

import gevent
from gevent import socket
from gevent.event import AsyncResult, Event

from .protocol import Message, Parser, ProtocolError, encode_action

log = logging.getLogger(__name__)
SECRET_FIELDS = {"secret", "password"}


class AmiError(Exception):
    pass


class AmiLoginError(AmiError):
    """Asterisk refused the credentials: retrying at once cannot help."""


class AmiAnswerLost(AmiError):
    """The action was written to Asterisk and its answer never came (the connection closed, or the wait timed
    out): Asterisk may well have carried it out. Not "unreachable": sending it again may do it twice."""


class Backoff:
    """Jittered exponential delays: the first at most `first` seconds, never more than `cap`."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, rng: random.Random | None = None):
        self.first = first
        self.cap = cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempt)
        self.attempt += 1
        return ceiling * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


def masked(fields: dict) -> dict:
    return {k: ("********" if k.lower() in SECRET_FIELDS else v) for k, v in fields.items()}


class _Pending:
    __slots__ = ("result", "response", "events")

    def __init__(self):
        self.result = AsyncResult()
        self.response: Message | None = None
        self.events: list[Message] = []


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        events: bool = True,
        on_event=None,
        on_connect=None,
        on_disconnect=None,
        trace=None,
        timeout: float = 10.0,
        ping_interval: float = 10.0,
        backoff: Backoff | None = None,
    ):
        self.host, self.port = host, port
        self.username, self.secret = username, secret
        self.events = events
        self.on_event = on_event
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.trace = trace
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.backoff = backoff or Backoff()
        self.sock = None
        self.banner: str | None = None
        self.connected = Event()
        self._closed = Event()
        self._stopping = False
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._reader = None

    # --- one connection -----------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, read the banner and log in; raises AmiError (AmiLoginError for bad credentials)."""
        self._closed.clear()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise AmiError(f"cannot connect to AMI at {self.host}:{self.port}: {exc.strerror or exc}") from None
        sock.settimeout(None)
        self.sock = sock
        parser = Parser()
        banner_read = AsyncResult()
        self._reader = gevent.spawn(self._read, sock, parser, banner_read)
        try:
            self.banner = banner_read.get(timeout=self.timeout)
        except gevent.Timeout:
            self.close()
            raise AmiError(f"{self.host}:{self.port} sent no AMI banner") from None
        except AmiError:
            self.close()
            raise
        try:
            response = self.action(
                "Login", {"Username": self.username, "Secret": self.secret, "Events": "on" if self.events else "off"}
            )
        except AmiAnswerLost as exc:
            self.close()
            raise AmiError(f"AMI login got no answer: {exc}") from None  # no action of the caller's went out
        if response.response != "Success":
            self.close()
            raise AmiLoginError(f"AMI login refused: {response.get('Message', 'no reason given')}")
        self.connected.set()

    def _read(self, sock, parser: Parser, banner_read: AsyncResult) -> None:
        """The one reader of `sock`, for as long as it lives. It reads its own socket, never `self.sock`: once
        a client opens again, a reader left from before would otherwise read the new connection beside its own
        reader (gevent refuses the second waiter, and the actions in flight were failed as if AMI had closed)."""
        error = AmiError("AMI closed the connection")
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                messages = parser.feed(data)
                if not banner_read.ready() and parser.banner is not None:
                    if not parser.banner:
                        raise AmiError(f"{self.host}:{self.port} did not greet as an Asterisk Manager Interface")
                    banner_read.set(parser.banner)
                for message in messages:
                    self._dispatch(message)
                # A flood that is always ready to read would otherwise starve the keep-alive and the writer.
                gevent.sleep(0)
        except (OSError, ProtocolError, AmiError) as exc:
            error = exc if isinstance(exc, AmiError) else AmiError(f"AMI connection failed: {exc}")
        finally:
            if not banner_read.ready():
                banner_read.set_exception(error)
            self._lost(sock, error)

    def _dispatch(self, message: Message) -> None:
        if self.trace:
            self.trace("<", message)
        pending = self._pending.get(message.action_id or "")
        if pending is not None and pending.result.ready():
            # Answered already: later messages with its ActionID are events (OriginateResponse).
            pending = None
        if pending is None:
            if message.event and self.on_event is not None:
                self.on_event(message)
            return
        list_marker = (message.get("EventList") or "").lower()
        if message.response is not None:
            pending.response = message
            if list_marker != "start":
                pending.result.set(message)
        elif list_marker == "complete":
            pending.result.set(pending.response)
        else:
            pending.events.append(message)

    def _lost(self, sock, error: AmiError) -> None:
        sock.close()
        if sock is not self.sock:
            return  # a connection from before: the current one and its actions are not its to fail
        self.connected.clear()
        for pending in self._pending.values():
            if not pending.result.ready():
                pending.result.set_exception(error)
        self._pending.clear()
        self._closed.set()

    def action(self, name: str, fields: dict | None = None, timeout: float | None = None) -> Message:
        """Send an action and wait for its response. For an event-list action the response's `events`
        attribute holds the list. Never hangs: raises AmiError when the action could not be written, and
        AmiAnswerLost when it was written but no answer came (closed connection, timeout)."""
        if self.sock is None or self._closed.is_set():
            raise AmiError("not connected to AMI")
        action_id = f"pbx-{next(self._ids)}"
        fields = {"ActionID": action_id, **(fields or {})}
        data = encode_action(name, fields)  # refuses CR/LF before anything is sent
        pending = self._pending[action_id] = _Pending()
        if self.trace:
            self.trace(">", Message([("Action", name), *masked(fields).items()]))
        try:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise AmiError(f"AMI connection failed: {exc}") from None
            try:
                response = pending.result.get(timeout=timeout or self.timeout)
            except gevent.Timeout:
                raise AmiAnswerLost(f"AMI did not answer {name} within {timeout or self.timeout:g} s") from None
            except AmiError as exc:
                raise AmiAnswerLost(f"{name} was sent, then {exc}") from None
        finally:
            self._pending.pop(action_id, None)
        response.events = pending.events
        return response

    def close(self) -> None:
        if self.sock is not None and not self._closed.is_set():
            try:
                self.sock.sendall(encode_action("Logoff"))
            except OSError:
                pass
            self.sock.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
        self.connected.clear()

    def __enter__(self):
        # actions.connect() hands over a client that is open already: a second open() would log in twice.
        if not self.connected.is_set():
            self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- staying connected ----------------------------------------------------------------------------

    def run(self) -> None:
        """Stay connected until stop(): on each (re)connect call on_connect(self); ping while idle; after a
        failure wait the next backoff delay (reset once a login succeeds)."""
        while not self._stopping:
            try:
                self.open()
                self.backoff.reset()
                if self.on_connect is not None:
                    self.on_connect(self)
                self._keepalive()
                error = AmiError("AMI closed the connection")
            except AmiError as exc:
                error = exc
            finally:
                self.close()
            if self._stopping:
                break
            delay = self.backoff.next()
            log.warning("AMI %s:%s: %s; retrying in %.1f s", self.host, self.port, error, delay)
            if self.on_disconnect is not None:
                self.on_disconnect(error, delay)
            self._sleep(delay)

    def _keepalive(self) -> None:
        while not self._stopping:
            if self._closed.wait(timeout=self.ping_interval):
                return
            if self._stopping:
                return
            self.action("Ping", timeout=self.ping_interval)

    def _sleep(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        while not self._stopping and time.monotonic() < deadline:
            gevent.sleep(min(0.05, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stopping = True
        if self.sock is not None:
            self.sock.close()
