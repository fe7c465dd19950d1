"""Keyset paging for lists that grow to thousands of rows: `limit`, `cursor` and `q` from the query string,
a page that starts after the cursor's key (an index range scan, as fast on page 100 as on page 1), the
total, and the cursor of the next page.
"""

import base64
import binascii
import json
from dataclasses import dataclass

import sqlalchemy as sa

from .validation import Errors, integer

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: list | None
    q: str | None
    before: list | None = None


@dataclass
class Page:
    rows: list
    total: int
    next_cursor: str | None
    prev_cursor: str | None


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list | None:
    """The key a cursor stands for, or None when it is not one this app gave out."""
    try:
        key = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if isinstance(key, list) and key and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in key):
        return key
    return None


def page_request(args, default_limit: int = DEFAULT_LIMIT) -> PageRequest:
    """Read `limit` (1-500), `cursor` or `before` (from a previous answer) and `q`; a 400 names a bad one."""
    errors = Errors()
    limit = integer(errors, "limit", args.get("limit", str(default_limit)), minimum=1, maximum=MAX_LIMIT)
    cursors = {}
    for name in ("cursor", "before"):
        if args.get(name):
            cursors[name] = decode_cursor(args[name])
            errors.check(name, cursors[name] is not None, "is not a cursor this list gave out")
    q = (args.get("q") or "").strip() or None
    errors.check("q", q is None or len(q) <= 80, "must be at most 80 characters")
    errors.raise_if_any()
    return PageRequest(limit, cursors.get("cursor"), q, cursors.get("before"))


def contains(column, text: str):
    """`column` contains `text` case-insensitively, with LIKE's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def _total(session, query) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))


def fetch_page(session, query, keys: tuple, page: PageRequest, *, descending: bool = False) -> Page:
    """The rows of `query` (already filtered, selecting each of `keys` by its name) in the order of `keys`,
    after the cursor (or before `before`), with the total of the filtered query and the cursors of the next
    and previous pages (None at either end)."""
    key = sa.tuple_(*keys)
    forward = [k.desc() if descending else k.asc() for k in keys]
    backward = [k.asc() if descending else k.desc() for k in keys]

    def key_of(row) -> list:
        return [row._mapping[k.key] for k in keys]

    if page.before is not None and len(page.before) == len(keys):
        total = _total(session, query)
        earlier = key > sa.tuple_(*page.before) if descending else key < sa.tuple_(*page.before)
        rows = session.execute(query.where(earlier).order_by(*backward).limit(page.limit + 1)).all()
        more_before = len(rows) > page.limit
        rows = rows[: page.limit][::-1]
        return Page(rows, total, encode_cursor(key_of(rows[-1])) if rows else None,
                    encode_cursor(key_of(rows[0])) if rows and more_before else None)
    paged = query.order_by(*forward)
    later_page = page.after is not None and len(page.after) == len(keys)
    # A search's first page and its total in one statement: the search reads every row either way (a contains
    # is no index's), so counting them apart read them all twice.
    counted = page.q and not later_page
    if later_page:
        paged = paged.where(key < sa.tuple_(*page.after) if descending else key > sa.tuple_(*page.after))
    elif counted:
        paged = paged.add_columns(sa.func.count().over().label("_total"))
    rows = session.execute(paged.limit(page.limit + 1)).all()
    total = (rows[0]._total if rows else 0) if counted else _total(session, query)
    more_after = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(rows, total, encode_cursor(key_of(rows[-1])) if more_after else None,
                encode_cursor(key_of(rows[0])) if rows and page.after is not None else None)
