"""Extensions to and from CSV, for the page and the CLI alike.

Export streams every extension (constant memory), its cells escaped so that a spreadsheet never runs one
as a formula; passwords only when asked for. Import reads the whole file first and checks every row with
the same rules as the API, then creates all of them in one transaction with their realtime rows — or,
with any error anywhere, nothing at all.

The page imports in two steps: the preview keeps the file it checked sealed on the server (pbxweb/sealed.py)
and hands back a token, so the apply step imports exactly that file, whatever its size, once. The
passwords an import generated are sealed the same way, for the admin to download once.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import audit, sealed
from .. import validation as v
from ..csv_cells import FORMULA_START, csv_line, csv_lines
from ..ext import db
from ..models import Extension
from ..plain_rows import stream_rows
from ..service_base import commit
from . import service

COLUMNS = ("number", "name", "email", "voicemail", "codecs", "context", "max_contacts", "is_active")
IMPORT_COLUMNS = (*COLUMNS, "password")
REQUIRED = ("number", "name")
MAX_ROWS = 20_000
# What pbxweb/sealed.py keeps for the page: the previewed file, the passwords an import generated.
PREVIEWED_FILE = "previewed import"
GENERATED_PASSWORDS = "generated passwords"
CREDENTIAL_COLUMNS = ("number", "name", "password")


def export_rows(with_passwords: bool = False, batch: int = 2000) -> Iterator[str]:
    """The CSV, a batch of lines at a time, its rows streamed from the database by number."""
    columns = (*COLUMNS, "password") if with_passwords else COLUMNS
    table = Extension.__table__.c
    # Only the columns written, as plain tuples, and yes/no from the database: 20,000 extensions took 0.3 s of
    # the worker's time as model objects and dictionaries, 0.07 s like this.
    yes_no = {c: sa.case((table[c], "yes"), else_="no") for c in ("voicemail", "is_active")}
    selected = [yes_no.get(c, table.sip_password if c == "password" else table[c]) for c in columns]
    lines = csv_lines if with_passwords else _kept_lines
    yield csv_line(columns)
    rows = []
    for row in stream_rows(sa.select(*selected).order_by(table.number), batch, "pbx_extensions_export"):
        rows.append(row)
        if len(rows) == batch:
            yield lines(rows)
            rows = []
    if rows:
        yield lines(rows)


# Each exported row's line, kept per process and keyed by the row's values, so an edited extension is simply a
# new key: between two exports only the edited few differ, and writing all 20,000 lines anew took 60 ms of a
# worker's CPU each time. Never with passwords (no secrets kept in memory). Bounded: emptied when full.
_lines_of: dict[tuple, str] = {}
KEPT_LINES = 2 * MAX_ROWS


def _kept_lines(rows) -> str:
    lines = []
    for row in rows:
        values = tuple(row)
        line = _lines_of.get(values)
        if line is None:
            if len(_lines_of) >= KEPT_LINES:
                _lines_of.clear()
            line = _lines_of[values] = csv_line(values)
        lines.append(line)
    return "".join(lines)


def record_password_export() -> None:
    """An export with the SIP passwords hands every phone's secret over: in the audit log like an import's
    download, committed before the first line leaves."""
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Extension))
    audit.record("download", audit.SIP_PASSWORDS, "in the extensions export", {"every extension": f"({count})"})
    db.session.commit()


@dataclass
class ImportResult:
    rows: int = 0
    # (line in the file, field, message); line 1 is the header
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    created: int = 0
    # The page's tokens: the previewed file, for the apply step; the generated passwords, for one download.
    upload: str | None = None
    credentials: str | None = None
    generated: int = 0
    # What the preview will create, as the page lists it (the first PREVIEW_ROWS).
    preview: list[dict] = field(default_factory=list)


PREVIEW_ROWS = 200

# A file to start from: every column, with what each takes.
SAMPLE = (
    "number,name,email,voicemail,codecs,context,max_contacts,is_active,password\r\n"
    "2001,Ann Martin,ann@example.com,yes,\"ulaw,alaw\",,1,yes,\r\n"
    "2002,Bob Okafor,,no,,,2,yes,\r\n"
)

class UnreadableFile(v.ValidationError):
    """A file that cannot be read at all (encoding, separators, columns): one message, no rows."""


def read_csv(raw: bytes) -> list[tuple[int, dict]]:
    """(line, row) for each data row; refuses what is not a CSV of extensions with a clear message. Every
    read of the file, its header's included, is inside one handler: whatever the csv module refuses is
    such a message too, never an exception."""
    try:
        text = raw.decode("utf-8-sig")  # a BOM, as Excel writes it, is fine
    except UnicodeDecodeError:
        raise UnreadableFile({"file": "is not UTF-8 text: save it as “CSV UTF-8” and try again"}) from None
    if "\x00" in text:
        raise UnreadableFile({"file": "is not a text file"})
    # newline="": lines may end in CR LF, LF or a lone CR (older Mac spreadsheets write those); the csv
    # module tells a line end from a line break inside quotes.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        _check_header(header)
        rows = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= MAX_ROWS:
                raise UnreadableFile({"file": f"has more than {MAX_ROWS:,} rows: split it"})
            if len(record) != len(header):
                rows.append((reader.line_num, {"_columns": f"has {len(record)} cells, the header has {len(header)}"}))
                continue
            rows.append((reader.line_num, dict(zip(header, record, strict=True))))
    except csv.Error as exc:
        raise UnreadableFile({"file": f"is not valid CSV at line {reader.line_num}: {exc}"}) from None
    if not rows:
        raise UnreadableFile({"file": "has no rows under its header"})
    return rows


def _check_header(header: list[str]) -> None:
    if not any(header):
        raise UnreadableFile({"file": f"is empty: the first line must name the columns ({', '.join(IMPORT_COLUMNS)})"})
    if len(header) == 1 and ";" in header[0]:
        raise UnreadableFile({"file": "separates its columns with ';': save it with commas (CSV) and try again"})
    unknown = [h for h in header if h not in IMPORT_COLUMNS]
    if unknown:
        raise UnreadableFile({"file": f"has unknown columns: {', '.join(unknown[:5])} (known: {', '.join(IMPORT_COLUMNS)})"})
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UnreadableFile({"file": f"lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"})
    if len(set(header)) != len(header):
        raise UnreadableFile({"file": "names a column twice"})


def _as_fields(row: dict) -> dict:
    """A CSV row as the service takes it: empty cells are "use the default"; a formula guard is taken off."""
    data = {}
    for column, cell in row.items():
        cell = cell.strip()
        if cell.startswith("'") and cell[1:2] in FORMULA_START:
            cell = cell[1:]
        if cell != "" or column in REQUIRED:
            data[column] = cell
    return data


def import_extensions(raw: bytes, *, dry_run: bool, progress=iter, credentials_for: int | None = None) -> ImportResult:
    """Check every row; unless `dry_run` and only if every row is good, create them all in one transaction.
    `progress` wraps the iteration over the rows (a progress bar). `credentials_for`: a user id — the
    passwords generated for rows without one are sealed for that user, in the same transaction
    (`result.credentials`), so that they are never lost between the commit and the answer."""
    result = ImportResult()
    rows = read_csv(raw)
    result.rows = len(rows)
    built: list[tuple[int, Extension]] = []
    generated: list[Extension] = []
    seen: dict[str, int] = {}
    for line, row in progress(rows):
        if "_columns" in row:
            result.errors.append((line, "_", row["_columns"]))
            continue
        fields = _as_fields(row)
        try:
            extension, _ = service.new_extension(fields)
        except v.ValidationError as error:
            result.errors.extend((line, f, m) for f, m in error.errors.items())
            continue
        if extension.number in seen:
            result.errors.append((line, "number", f"{extension.number} is also on line {seen[extension.number]}"))
            continue
        seen[extension.number] = line
        built.append((line, extension))
        if "password" not in fields:
            generated.append(extension)
    taken = service.numbers_taken([e.number for _, e in built])
    result.errors.extend((line, "number", taken[e.number]) for line, e in built if e.number in taken)
    result.errors.sort()
    if result.errors or dry_run or not built:
        if not result.errors:
            result.preview = [{"line": line, "number": e.number, "name": e.name, "email": e.email, "voicemail": e.voicemail,
                               "is_active": e.is_active, "password": "generated" if e in generated else "from the file"}
                              for line, e in built[:PREVIEW_ROWS]]
        db.session.rollback()
        return result
    db.session.add_all(e for _, e in built)
    if credentials_for is not None and generated:
        result.credentials = sealed.seal(GENERATED_PASSWORDS, credentials_for, _credentials_csv(generated))
        result.generated = len(generated)
    commit("file", "another change created one of these numbers meanwhile: nothing was imported, try again")
    result.created = len(built)
    return result


def _credentials_csv(extensions: list[Extension]) -> bytes:
    lines = [csv_line(CREDENTIAL_COLUMNS)]
    lines.extend(csv_line((e.number, e.name, e.sip_password)) for e in extensions)
    return "".join(lines).encode()


def preview_upload(raw: bytes, user_id: int) -> ImportResult:
    """The page's first step: check every row, write nothing. A file with no problem is kept sealed for the
    second step (`result.upload`)."""
    result = import_extensions(raw, dry_run=True)
    if not result.errors:
        result.upload = sealed.seal(PREVIEWED_FILE, user_id, raw)
        db.session.commit()
    return result


def apply_upload(token: str | None, user_id: int) -> ImportResult:
    """The page's second step: import the file this user's preview kept, once; the passwords it generates
    are sealed for one download. A 410 when it was imported already or its hour is over."""
    raw = sealed.open_once(PREVIEWED_FILE, user_id, token)
    if raw is None:
        db.session.commit()  # the expired files the open deleted stay deleted
        raise v.Gone({"file": "you previewed was imported already, or its preview is over an hour old: upload it again"})
    return import_extensions(raw, dry_run=False, credentials_for=user_id)


def download_credentials(token: str | None, user_id: int) -> bytes:
    """The CSV of the passwords an import generated (number, name, password), once, recorded in the audit
    log. A 410 once it was downloaded or its hour is over."""
    data = sealed.open_once(GENERATED_PASSWORDS, user_id, token)
    if data is None:
        db.session.commit()  # the expired files the open deleted stay deleted
        raise v.Gone({"_": "these passwords were downloaded already, or their hour is over: the file is gone. "
                           "A new password is made from its extension's row (Regenerate)."})
    numbers = [row[0] for row in csv.reader(io.StringIO(data.decode(), newline=""))][1:]
    shown = ", ".join(numbers[:10]) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
    audit.record("download", audit.SIP_PASSWORDS, f"generated for {len(numbers)} imported extensions",
                 {"extensions": shown})
    db.session.commit()
    return data
