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
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(spreadsheet_safe(value) for value in values)
    return out.getvalue()
