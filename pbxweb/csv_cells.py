"""CSV that is safe to open in a spreadsheet, written one line at a time (for streaming). Every CSV the app
serves is written by csv_line, so no cell of any of them is one a spreadsheet would run as a formula
(=cmd|' /C calc'!A0): names and numbers come from admins and from callers alike."""

import csv
import io

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_line(values) -> str:
    return csv_lines((values,))


def csv_lines(rows) -> str:
    """The lines of many rows at once: one writer for all of them (a large export's lines cost a third)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(map(spreadsheet_safe, values) for values in rows)
    return out.getvalue()
