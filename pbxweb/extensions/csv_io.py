"""Extensions to and from CSV, for the page and the CLI alike.

Export streams every extension (constant memory), its cells escaped so that a spreadsheet never runs one
as a formula; passwords only when asked for. Import reads the whole file first and checks every row with
the same rules as the API, then creates all of them in one transaction with their realtime rows — or,
with any error anywhere, nothing at all.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import validation as v
from ..csv_cells import FORMULA_START, csv_line, spreadsheet_safe
from ..ext import db
from ..models import Extension
from ..service_base import commit
from . import service

COLUMNS = ("number", "name", "email", "voicemail", "codecs", "context", "max_contacts", "is_active")
IMPORT_COLUMNS = (*COLUMNS, "password")
REQUIRED = ("number", "name")
MAX_ROWS = 20_000


def export_rows(with_passwords: bool = False, batch: int = 1000) -> Iterator[str]:
    """The CSV, a batch of lines at a time, read from the database in batches by number (keyset)."""
    columns = (*COLUMNS, "password") if with_passwords else COLUMNS
    yield csv_line(columns)
    after = ""
    while True:
        # Rows, not model objects: to_dict reads the same names, at a fraction of the cost (20,000 took a second).
        rows = db.session.execute(
            sa.select(Extension.__table__).where(Extension.number > after).order_by(Extension.number).limit(batch)
        ).all()
        if not rows:
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for extension in rows:
            values = {**service.to_dict(extension), "password": extension.sip_password}
            values["codecs"] = ",".join(values["codecs"])
            values["voicemail"] = "yes" if values["voicemail"] else "no"
            values["is_active"] = "yes" if values["is_active"] else "no"
            writer.writerow([spreadsheet_safe(values[c]) for c in columns])
        yield out.getvalue()
        after = rows[-1].number


@dataclass
class ImportResult:
    rows: int = 0
    # (line in the file, field, message); line 1 is the header
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    created: int = 0


class UnreadableFile(v.ValidationError):
    """A file that cannot be read at all (encoding, separators, columns): one message, no rows."""


def read_csv(raw: bytes) -> list[tuple[int, dict]]:
    """(line, row) for each data row; refuses what is not a CSV of extensions with a clear message."""
    try:
        text = raw.decode("utf-8-sig")  # a BOM, as Excel writes it, is fine
    except UnicodeDecodeError:
        raise UnreadableFile({"file": "is not UTF-8 text: save it as “CSV UTF-8” and try again"}) from None
    if "\x00" in text:
        raise UnreadableFile({"file": "is not a text file"})
    lines = text.splitlines()
    header_line = lines[0] if lines else ""
    if not header_line.strip():
        raise UnreadableFile({"file": f"is empty: the first line must name the columns ({', '.join(IMPORT_COLUMNS)})"})
    if ";" in header_line and "," not in header_line:
        raise UnreadableFile({"file": "separates its columns with ';': save it with commas (CSV) and try again"})
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader)]
    unknown = [h for h in header if h not in IMPORT_COLUMNS]
    if unknown:
        raise UnreadableFile({"file": f"has unknown columns: {', '.join(unknown[:5])} (known: {', '.join(IMPORT_COLUMNS)})"})
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UnreadableFile({"file": f"lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"})
    if len(set(header)) != len(header):
        raise UnreadableFile({"file": "names a column twice"})
    rows = []
    try:
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
    return rows


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


def import_extensions(raw: bytes, *, dry_run: bool, progress=iter) -> ImportResult:
    """Check every row; unless `dry_run` and only if every row is good, create them all in one transaction.
    `progress` wraps the iteration over the rows (a progress bar)."""
    result = ImportResult()
    rows = read_csv(raw)
    result.rows = len(rows)
    built: list[tuple[int, Extension]] = []
    seen: dict[str, int] = {}
    for line, row in progress(rows):
        if "_columns" in row:
            result.errors.append((line, "_", row["_columns"]))
            continue
        try:
            extension, _ = service.new_extension(_as_fields(row))
        except v.ValidationError as error:
            result.errors.extend((line, f, m) for f, m in error.errors.items())
            continue
        if extension.number in seen:
            result.errors.append((line, "number", f"{extension.number} is also on line {seen[extension.number]}"))
            continue
        seen[extension.number] = line
        built.append((line, extension))
    taken = service.numbers_taken([e.number for _, e in built])
    result.errors.extend((line, "number", taken[e.number]) for line, e in built if e.number in taken)
    result.errors.sort()
    if result.errors or dry_run or not built:
        db.session.rollback()
        return result
    db.session.add_all(e for _, e in built)
    commit("file", "another change created one of these numbers meanwhile: nothing was imported, try again")
    result.created = len(built)
    return result
