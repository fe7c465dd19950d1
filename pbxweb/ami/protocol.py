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
    """Header names match exactly as Asterisk spells them (`ActionID`, `Uniqueid`; `UniqueID` in Cdr).

    Fields are kept as one flat list [name, value, name, value, …]: a million events make no million
    small tuples for the garbage collector to walk, which made parsing a third slower.
    """

    __slots__ = ("fields", "lines", "events")

    def __init__(self, headers=(), lines: list[str] | None = None):
        self.fields: list[str] = [part for pair in headers for part in pair]
        # Lines without `: ` (old-style Command output); Asterisk ignores them in what it receives.
        self.lines = lines or []
        # For the response of an event-list action: the list's events (filled in by the client).
        self.events: list["Message"] = []

    @classmethod
    def from_fields(cls, fields: list[str], lines: list[str] | None) -> "Message":
        message = cls.__new__(cls)
        message.fields = fields
        message.lines = lines or []
        message.events = []
        return message

    @property
    def headers(self) -> list[tuple[str, str]]:
        fields = self.fields
        return list(zip(fields[0::2], fields[1::2], strict=True))

    def get(self, key: str, default: str | None = None) -> str | None:
        fields = self.fields
        start = 0
        try:
            while True:
                index = fields.index(key, start)
                if not index & 1:
                    return fields[index + 1]
                start = index + 1  # a value that happens to equal the name
        except ValueError:
            return default

    def getall(self, key: str) -> list[str]:
        fields = self.fields
        return [fields[i + 1] for i in range(0, len(fields), 2) if fields[i] == key]

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


def parse_message(text: str) -> Message:
    fields: list[str] = []
    append = fields.append
    lines = None
    for raw in text.split("\r\n"):
        key, sep, value = raw.partition(": ")
        if sep and key and " " not in key:
            append(key)
            append(value)
        elif raw.endswith(":") and " " not in raw:
            append(raw[:-1])
            append("")
        elif raw:
            if lines is None:
                lines = []
            lines.append(raw)
    return Message.from_fields(fields, lines)


class Parser:
    """Feed it bytes as they arrive; it returns every message completed by them."""

    def __init__(self, max_message: int = 16 * 1024 * 1024):
        self.rest = b""
        self.banner: str | None = None
        self.max_message = max_message

    def feed(self, data: bytes) -> list[Message]:
        if self.rest:
            data = self.rest + data
        if self.banner is None:
            end = data.find(b"\r\n")
            if end < 0:
                self.rest = data
                return []
            first = data[:end]
            if first.startswith(BANNER_PREFIX):
                self.banner = first.decode("ascii", errors="replace")
                data = data[end + 2 :]
            else:
                self.banner = ""
        # Everything up to the last terminator is whole messages: decode and split them in one go.
        complete, terminator, self.rest = data.rpartition(TERMINATOR)
        if len(self.rest) > self.max_message:
            raise ProtocolError(f"message larger than {self.max_message} bytes")
        if not terminator:
            return []
        text = complete.decode("utf-8", errors="replace")
        return [parse_message(block.lstrip("\r\n")) for block in text.split("\r\n\r\n") if block.strip("\r\n")]


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
