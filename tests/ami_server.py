"""A test AMI server on 127.0.0.1 that answers with what a real Asterisk 22 sent (../shared/asterisk/ami/).

Responses are taken from the captures: every message of a capture that carries an ActionID the capture's
client sent is filed under that action's name, and replayed with the asking client's ActionID. Login answers
like the captures too: accepted (then FullyBooted), or `Authentication failed` and a close.
"""

import re
import socket
import threading
from pathlib import Path

from pbxweb.ami.protocol import Parser

SENT_ACTION = re.compile(rb"b'Action: (\w+)\\r\\nActionID: ([^\\]+)\\r\\n")


def split_messages(stream: bytes) -> tuple[bytes, list[bytes]]:
    banner, _, rest = stream.partition(b"\r\n")
    return banner + b"\r\n", [m + b"\r\n\r\n" for m in rest.split(b"\r\n\r\n") if m]


def load_responses(ami_dir: Path) -> dict[str, list[bytes]]:
    """Action name → the messages Asterisk sent for it (response, then any list events)."""
    responses: dict[str, list[bytes]] = {}
    for sent in sorted(ami_dir.glob("*.sent.txt")):
        ids = {m.group(2).decode(): m.group(1).decode() for m in SENT_ACTION.finditer(sent.read_bytes())}
        _, messages = split_messages((ami_dir / sent.name.replace(".sent.txt", ".ami")).read_bytes())
        by_id: dict[str, list[bytes]] = {}
        for raw in messages:
            match = re.search(rb"\r\nActionID: ([^\r]+)\r\n|^ActionID: ([^\r]+)\r\n", raw)
            if match:
                action_id = (match.group(1) or match.group(2)).decode()
                by_id.setdefault(action_id, []).append(raw)
        for action_id, action in ids.items():
            if action_id in by_id and action not in responses:
                responses[action] = [(m, action_id) for m in by_id[action_id]]
    return responses


class AmiTestServer:
    def __init__(self, ami_dir: Path, username: str = "miniadmin", secret: str = "miniadmin-secret"):
        self.ami_dir = ami_dir
        self.username = username
        self.secret = secret
        self.responses = load_responses(ami_dir)
        self.banner, login_messages = split_messages((ami_dir / "login.ami").read_bytes())
        self.fully_booted = next(m for m in login_messages if m.startswith(b"Event: FullyBooted"))
        self.received: list = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.clients: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _reply(self, action: str, action_id: str) -> bytes:
        captured = self.responses.get(action)
        if captured is None:
            return (f"Response: Error\r\nActionID: {action_id}\r\nMessage: Invalid/unknown command: {action}. "
                    "Use Action: ListCommands to show available commands.\r\n\r\n").encode()
        return b"".join(raw.replace(f"ActionID: {old}\r\n".encode(), f"ActionID: {action_id}\r\n".encode())
                        for raw, old in captured)

    def _serve(self, conn: socket.socket):
        parser = Parser()
        parser.banner = ""  # the client sends no banner
        logged_in = False
        try:
            conn.sendall(self.banner)
            while not self._stop.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                for message in parser.feed(data):
                    self.received.append(message)
                    action = message.get("Action") or ""
                    action_id = message.get("ActionID") or ""
                    if action.lower() == "login":
                        if message.get("Username") == self.username and message.get("Secret") == self.secret:
                            logged_in = True
                            conn.sendall(f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n".encode()
                                         + self.fully_booted)
                        else:
                            conn.sendall(f"Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n".encode())
                            return
                    elif action.lower() == "logoff":
                        conn.sendall(f"Response: Goodbye\r\nActionID: {action_id}\r\nMessage: Thanks for all the fish.\r\n\r\n".encode())
                        return
                    elif not logged_in:
                        conn.sendall(f"Response: Error\r\nActionID: {action_id}\r\nMessage: Permission denied\r\n\r\n".encode())
                    else:
                        conn.sendall(self._reply(action, action_id))
        except OSError:
            return
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.sock.close()
        for conn in self.clients:
            try:
                conn.close()
            except OSError:
                pass
        self.thread.join(timeout=2)
