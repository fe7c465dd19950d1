"""CSV that is safe to open in a spreadsheet: one line at a time (for streaming), and no cell a spreadsheet
would run as a formula (=cmd|' /C calc'!A0)."""

import csv
import io

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()
