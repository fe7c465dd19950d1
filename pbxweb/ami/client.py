"""An AMI connection for request/response work (verify, actions). With gevent's patch its socket yields to
other greenlets instead of blocking the process."""

import itertools
import socket
import time

from .protocol import Message, Parser, encode_action


class AmiError(Exception):
    pass


class AmiLoginError(AmiError):
    pass


class AmiConnection:
    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.parser = Parser()
        self.pending: list[Message] = []
        self._ids = itertools.count(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def connect(self) -> str:
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise AmiError(f"cannot connect to AMI at {self.host}:{self.port}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.timeout
        while self.parser.banner is None:
            self._read(deadline)
        if not self.parser.banner:
            raise AmiError(f"{self.host}:{self.port} did not greet as an Asterisk Manager Interface")
        return self.parser.banner

    def _read(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AmiError("AMI did not answer in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AmiError("AMI did not answer in time") from None
        except OSError as exc:
            raise AmiError(f"AMI connection failed: {exc}") from None
        if not data:
            raise AmiError("AMI closed the connection")
        self.pending.extend(self.parser.feed(data))

    def action(self, name: str, fields: dict | None = None) -> tuple[Message, list[Message]]:
        """Send an action and wait for its response; for an event-list action, also collect its events
        up to the closing `…Complete` event."""
        action_id = f"pbx-{next(self._ids)}"
        self.sock.sendall(encode_action(name, {"ActionID": action_id, **(fields or {})}))
        deadline = time.monotonic() + self.timeout
        response = None
        events: list[Message] = []
        while True:
            while self.pending:
                message = self.pending.pop(0)
                if message.action_id != action_id:
                    continue
                if message.response is not None:
                    response = message
                    if (message.get("EventList") or "").lower() != "start":
                        return response, events
                elif (message.get("EventList") or "").lower() == "complete":
                    return response, events
                else:
                    events.append(message)
            self._read(deadline)

    def login(self, username: str, secret: str) -> None:
        response, _ = self.action("Login", {"Username": username, "Secret": secret, "Events": "off"})
        if response.response != "Success":
            raise AmiLoginError(f"AMI login refused: {response.get('Message', 'no reason given')}")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.sendall(encode_action("Logoff"))
            except OSError:
                pass
            self.sock.close()
            self.sock = None
