"""What it takes to turn the rows a table has into the rows it should have — a pure function."""

from dataclasses import dataclass, field

from .mapping import INSERT_ONLY_COLUMNS
from .schema import ROW_KEYS


@dataclass
class TableChanges:
    table: str
    inserts: list[dict] = field(default_factory=list)
    # (key values, {column: new value}) — only the columns that differ.
    updates: list[tuple[tuple, dict]] = field(default_factory=list)
    # Keys of rows that nothing should own (deleted, or only listed when unowned rows are kept).
    extras: list[tuple] = field(default_factory=list)
    unchanged: int = 0

    def keys(self) -> set[tuple]:
        """The keys of every row this inserts, updates or deletes."""
        return {row_key(self.table, r) for r in self.inserts} | {k for k, _ in self.updates} | set(self.extras)


def row_key(table: str, row) -> tuple:
    return tuple(row[c] for c in ROW_KEYS[table])


def diff_rows(table: str, desired: list[dict], existing: list[dict]) -> TableChanges:
    """Compare only the columns each desired row names: every other column belongs to the admin (set by
    hand in SQL) or to Asterisk, and is left as it is."""
    changes = TableChanges(table)
    insert_only = INSERT_ONLY_COLUMNS.get(table, ())
    current = {row_key(table, row): row for row in existing}
    wanted_keys = set()
    for row in desired:
        key = row_key(table, row)
        wanted_keys.add(key)
        have = current.get(key)
        if have is None:
            changes.inserts.append(row)
            continue
        drift = {
            col: value
            for col, value in row.items()
            if col not in insert_only and col not in ROW_KEYS[table] and have.get(col) != value
        }
        if drift:
            changes.updates.append((key, drift))
        else:
            changes.unchanged += 1
    changes.extras = [key for key in current if key not in wanted_keys]
    return changes
