"""A small reader of Asterisk's config syntax, and its dialplan pattern matching, for the tests.

Sections `[name]`, `[name](!)`, `[name](template,…)`; `key = value` and `key => value`; `same => …`;
`;` comments (`\\;` is a literal semicolon).
"""

import re
from dataclasses import dataclass, field


@dataclass
class Section:
    name: str
    is_template: bool = False
    templates: list[str] = field(default_factory=list)
    entries: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        values = self.getall(key)
        return values[-1] if values else None

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self.entries if k == key]


SECTION = re.compile(r"\[([^\]]+)\](?:\(([^)]*)\))?$")


def strip_comment(line: str) -> str:
    out = []
    escaped = False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == ";":
            break
        else:
            out.append(ch)
    return "".join(out).strip()


def parse(text: str) -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if not line or line.startswith("#include"):
            continue
        if match := SECTION.match(line):
            options = [o.strip() for o in (match.group(2) or "").split(",") if o.strip()]
            sections.append(Section(match.group(1), "!" in options, [o for o in options if o != "!"]))
            continue
        equals = line.find("=")
        if equals <= 0 or not sections:
            raise ValueError(f"line {number}: not a section or a setting: {raw!r}")
        key = line[:equals].strip()
        value = line[equals + 2 :] if line[equals + 1 : equals + 2] == ">" else line[equals + 1 :]
        sections[-1].entries.append((key, value.strip()))
    return sections


def by_name(sections: list[Section]) -> dict[str, Section]:
    return {s.name: s for s in sections}


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk's extension matching: `_` starts a pattern; X, Z, N (either case) and [..] match one digit;
    `.` one or more characters, `!` zero or more; anything else is literal."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    chars = iter(pattern[1:])
    for ch in chars:
        upper = ch.upper()
        if upper == "X":
            regex += "[0-9]"
        elif upper == "Z":
            regex += "[1-9]"
        elif upper == "N":
            regex += "[2-9]"
        elif ch == "[":
            body = ""
            for inner in chars:
                if inner == "]":
                    break
                body += inner
            regex += f"[{body}]"
        elif ch == ".":
            regex += ".+"
        elif ch == "!":
            regex += ".*"
        else:
            regex += re.escape(ch)
    return re.fullmatch(regex, exten) is not None


def extensions_of(section: Section) -> list[str]:
    """The extension names and patterns of a dialplan context (`exten =>` lines)."""
    return [value.split(",", 1)[0] for key, value in section.entries if key == "exten"]
