"""The AMI wire format: an incremental parser and a safe encoder. No I/O here.

A message is `Key: Value` lines ended by CRLF and closed by an empty line. Keys repeat (ChanVariable),
Command output arrives as `Output:` lines (or, from older servers, as bare lines after `Response: Follows`),
and header order is not stable. Bytes are decoded only once a whole message is in, so a UTF-8 character
split across two reads survives.
"""

from collections.abc import Iterable

BANNER_PREFIX = b"Asterisk Call Manager/"
TERMINATOR = b"\r\n\r\n"


class Message:
    __slots__ = ("headers", "lines", "events")

    def __init__(self, headers: list[tuple[str, str]], lines: list[str] | None = None):
        self.headers = headers
        # Lines without `: ` (old-style Command output); Asterisk ignores them in what it receives.
        self.lines = lines or []
        # For the response of an event-list action: the list's events (filled in by the client).
        self.events: list["Message"] = []

    def get(self, key: str, default: str | None = None) -> str | None:
        key = key.lower()
        for k, value in self.headers:
            if k.lower() == key:
                return value
        return default

    def getall(self, key: str) -> list[str]:
        key = key.lower()
        return [value for k, value in self.headers if k.lower() == key]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"


def parse_message(block: bytes) -> Message:
    headers = []
    lines = []
    for raw in block.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = raw.partition(": ")
        if sep and key and " " not in key:
            headers.append((key, value))
        elif raw.endswith(":") and " " not in raw:
            headers.append((raw[:-1], ""))
        elif raw:
            lines.append(raw)
    return Message(headers, lines)


class Parser:
    """Feed it bytes as they arrive; it returns every message completed by them."""

    def __init__(self, max_message: int = 16 * 1024 * 1024):
        self.buffer = bytearray()
        self.banner: str | None = None
        self.max_message = max_message

    def feed(self, data: bytes) -> list[Message]:
        self.buffer += data
        if self.banner is None:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return []
            first = bytes(self.buffer[:end])
            if first.startswith(BANNER_PREFIX):
                self.banner = first.decode("ascii", errors="replace")
                del self.buffer[: end + 2]
            else:
                self.banner = ""
        messages = []
        start = 0
        buffer = self.buffer
        while True:
            end = buffer.find(TERMINATOR, start)
            if end < 0:
                break
            block = bytes(buffer[start:end])
            start = end + 4
            if block.strip(b"\r\n"):
                messages.append(parse_message(block.lstrip(b"\r\n")))
        del buffer[:start]
        if len(buffer) > self.max_message:
            raise ProtocolError(f"message larger than {self.max_message} bytes")
        return messages


class ProtocolError(Exception):
    pass


class UnsafeField(ValueError):
    """A value that would end a header line: CR or LF in an AMI field is an injection."""


def encode_action(action: str, fields: Iterable[tuple[str, str]] | dict = ()) -> bytes:
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    lines = [("Action", action), *items]
    out = []
    for key, value in lines:
        value = "" if value is None else str(value)
        if any(c in key for c in "\r\n: ") or not key:
            raise UnsafeField(f"invalid AMI header name {key!r}")
        if "\r" in value or "\n" in value:
            raise UnsafeField(f"AMI field {key} contains a line break")
        out.append(f"{key}: {value}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")
