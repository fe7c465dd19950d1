"""A test AMI server on 127.0.0.1 that answers with what a real Asterisk 22 sent (tests/fixtures/asterisk/ami/).

Responses are taken from the captures: every message of a capture that carries an ActionID the capture's
client sent is filed under that action's name, and replayed with the asking client's ActionID. Login answers
like the captures too: accepted (then FullyBooted), or `Authentication failed` and a close. Tests steer it:
push a capture's events, answer an action from another capture, stay silent, close on an action unanswered,
refuse every connection, drop every connection, send garbage.
"""

import re
import socket
import threading
from pathlib import Path

from pbxweb.ami.protocol import Parser

SENT_ACTION = re.compile(rb"b'Action: (\w+)\\r\\nActionID: ([^\\]+)\\r\\n")
ACTION_ID = re.compile(rb"(?:^|\r\n)ActionID: ([^\r]+)\r\n")


def split_messages(stream: bytes) -> tuple[bytes, list[bytes]]:
    banner, _, rest = stream.partition(b"\r\n")
    return banner + b"\r\n", [m + b"\r\n\r\n" for m in rest.split(b"\r\n\r\n") if m]


def capture_answers(ami_dir: Path) -> dict[tuple[str, str], tuple[str, list[bytes]]]:
    """(capture, ActionID) → (action name, the messages Asterisk sent for it)."""
    answers = {}
    for sent in sorted(ami_dir.glob("*.sent.txt")):
        capture = sent.name.replace(".sent.txt", ".ami")
        names = {m.group(2).decode(): m.group(1).decode() for m in SENT_ACTION.finditer(sent.read_bytes())}
        _, messages = split_messages((ami_dir / capture).read_bytes())
        for raw in messages:
            match = ACTION_ID.search(raw)
            if match and match.group(1).decode() in names:
                action_id = match.group(1).decode()
                answers.setdefault((capture, action_id), (names[action_id], []))[1].append(raw)
    return answers


def capture_events(ami_dir: Path, capture: str) -> list[bytes]:
    """A capture's unsolicited events, as Asterisk sent them."""
    _, messages = split_messages((ami_dir / capture).read_bytes())
    return [m for m in messages if m.startswith(b"Event: ") and not ACTION_ID.search(m)]


class AmiTestServer:
    def __init__(self, ami_dir: Path, username: str = "miniadmin", secret: str = "miniadmin-secret"):
        self.ami_dir = ami_dir
        self.username = username
        self.secret = secret
        self.answers = capture_answers(ami_dir)
        # Action name → captured answer: the first capture's, until a test picks another.
        self.responses: dict[str, tuple[str, list[bytes]]] = {}
        for (_capture, action_id), (name, raw) in self.answers.items():
            self.responses.setdefault(name, (action_id, raw))
        self.banner, login_messages = split_messages((ami_dir / "login.ami").read_bytes())
        self.fully_booted = next(m for m in login_messages if m.startswith(b"Event: FullyBooted"))
        self.received: list = []
        # Called with each action a logged-in client sends, before it is answered (to look at the world
        # as it was when Asterisk got the action).
        self.on_action = None
        self.logins = 0
        self.connections = 0
        self.silent: set[str] = set()
        # Actions on which the connection is closed unanswered, as if Asterisk went away right after reading one.
        self.close_on: set[str] = set()
        self.close_after_login = False
        # Accept, then close before the banner: a connection that is gone before any action could be sent.
        self.close_on_connect = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.logged_in: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # --- steering, from a test ----------------------------------------------------------------------

    def answer_from(self, capture: str, action_id: str) -> None:
        """Answer this action as Asterisk answered it in `capture` (e.g. a QueueStatus with a caller)."""
        name, raw = self.answers[(capture, action_id)]
        self.responses[name] = (action_id, raw)

    def push(self, *messages: bytes) -> None:
        """Send raw bytes to every logged-in client, as one write each."""
        with self._lock:
            clients = list(self.logged_in)
        for conn in clients:
            for data in messages:
                try:
                    conn.sendall(data)
                except OSError:
                    pass

    def push_capture(self, capture: str, until: str | None = None) -> list[bytes]:
        """Send a capture's unsolicited events (up to and with the first `until` event); returns them."""
        events = []
        for raw in capture_events(self.ami_dir, capture):
            events.append(raw)
            if until and raw.startswith(f"Event: {until}\r\n".encode()):
                break
        self.push(b"".join(events))
        return events

    def drop(self) -> None:
        """Close every connection at once, as a crash or a network cut would."""
        with self._lock:
            clients, self.clients, self.logged_in = list(self.clients), [], []
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def actions(self, name: str) -> list:
        return [m for m in self.received if (m.get("Action") or "").lower() == name.lower()]

    # --- serving ------------------------------------------------------------------------------------

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            if self.close_on_connect:
                conn.close()
                continue
            with self._lock:
                self.clients.append(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _reply(self, action: str, action_id: str) -> bytes:
        captured = self.responses.get(action)
        if captured is None:
            return (f"Response: Error\r\nActionID: {action_id}\r\nMessage: Invalid/unknown command: {action}. "
                    "Use Action: ListCommands to show available commands.\r\n\r\n").encode()
        old, raw = captured
        return b"".join(m.replace(f"ActionID: {old}\r\n".encode(), f"ActionID: {action_id}\r\n".encode()) for m in raw)

    def _serve(self, conn: socket.socket):
        parser = Parser()
        parser.banner = ""  # the client sends no banner
        try:
            conn.sendall(self.banner)
            while not self._stop.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                for message in parser.feed(data):
                    self.received.append(message)
                    if self._handle(conn, message) is False:
                        return
        except OSError:
            return
        finally:
            with self._lock:
                for group in (self.clients, self.logged_in):
                    if conn in group:
                        group.remove(conn)
            conn.close()

    def _handle(self, conn, message) -> bool:
        action = (message.get("Action") or "").lower()
        action_id = message.get("ActionID") or ""
        if action == "login":
            self.logins += 1
            if message.get("Username") != self.username or message.get("Secret") != self.secret:
                conn.sendall(f"Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n".encode())
                return False
            conn.sendall(f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n".encode())
            if self.close_after_login:
                return False
            with self._lock:
                self.logged_in.append(conn)
            if (message.get("Events") or "on").lower() != "off":
                conn.sendall(self.fully_booted)
        elif action == "logoff":
            conn.sendall(f"Response: Goodbye\r\nActionID: {action_id}\r\nMessage: Thanks for all the fish.\r\n\r\n".encode())
            return False
        elif conn not in self.logged_in:
            conn.sendall(f"Response: Error\r\nActionID: {action_id}\r\nMessage: Permission denied\r\n\r\n".encode())
        elif message.get("Action") in self.close_on:
            return False
        elif message.get("Action") in self.silent:
            pass
        else:
            if self.on_action is not None:
                self.on_action(message)
            conn.sendall(self._reply(message.get("Action") or "", action_id))
        return True

    def stop(self):
        self._stop.set()
        self.sock.close()
        self.drop()
        self.thread.join(timeout=2)
