"""Keyset paging for lists that grow to thousands of rows: `limit`, `cursor` and `q` from the query string,
a page that starts after the cursor's key (an index range scan, as fast on page 100 as on page 1), the
total, and the cursor of the next page.
"""

import base64
import binascii
from dataclasses import dataclass

import sqlalchemy as sa

from .validation import Errors, integer

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: str | None
    q: str | None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str | None:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode() or None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def page_request(args) -> PageRequest:
    """Read `limit` (1-500, default 100), `cursor` (from a previous answer) and `q`; a 400 names a bad one."""
    errors = Errors()
    limit = integer(errors, "limit", args.get("limit", str(DEFAULT_LIMIT)), minimum=1, maximum=MAX_LIMIT)
    after = None
    if args.get("cursor"):
        after = _decode_cursor(args["cursor"])
        errors.check("cursor", after is not None, "is not a cursor this list gave out")
    q = (args.get("q") or "").strip() or None
    errors.check("q", q is None or len(q) <= 80, "must be at most 80 characters")
    errors.raise_if_any()
    return PageRequest(limit, after, q)


def contains(column, text: str):
    """`column` contains `text` case-insensitively, with LIKE's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def fetch_page(session, query, key_column, page: PageRequest) -> tuple[list, int, str | None]:
    """The rows of `query` (already filtered, selecting `key_column` by its name) ordered by `key_column`
    after the cursor, the total of the filtered query, and the next cursor (None on the last page)."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    paged = query.order_by(key_column)
    if page.after is not None:
        paged = paged.where(key_column > page.after)
    rows = session.execute(paged.limit(page.limit + 1)).all()
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor(rows[-1]._mapping[key_column.key])
    return rows, total, next_cursor
