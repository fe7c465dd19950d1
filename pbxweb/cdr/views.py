"""The call log pages: calls newest first with filters in the URL, each call expanding into its legs; new
calls polled onto the top; CSV export; statistics with server-rendered charts."""

from flask import Blueprint, Response, g, render_template, request, stream_with_context

from ..csv_cells import csv_line
from ..pages import page_or_fragment
from ..paging import page_request
from . import service
from .kept import kept

bp = Blueprint("calls", __name__, url_prefix="/calls")

FILTER_KEYS = ("range", "from", "to", "number", "extension", "group", "direction", "disposition", "min_duration")


def _filter_args() -> dict:
    return {key: request.args[key] for key in FILTER_KEYS if request.args.get(key)}


def _context(filters, page) -> dict:
    return {"page": page, "filters": _filter_args(), "groups": service.group_names(), "local": service.local,
            "dispositions": service.DISPOSITIONS, "directions": service.DIRECTIONS, "cursor": request.args.get("cursor")}


@bp.get("")
def list_page():
    filters = service.parse_filters(request.args, g.user)
    page = service.calls_page(filters, page_request(request.args, default_limit=50).limit, request.args.get("cursor"))
    return page_or_fragment("calls/list.html", "calls/_table.html", **_context(filters, page))


@bp.get("/newer")
def newer():
    """Calls newer than the top one shown (the poll of the first page), to go on top of the table."""
    filters = service.parse_filters(request.args, g.user)
    top = request.args.get("after")
    page = service.calls_page(filters, 50)
    calls = []
    for call in page.calls:
        if call.linkedid == top:
            break
        calls.append(call)
    return render_template("calls/_newer.html", calls=calls, **_context(filters, page))



@bp.get("/export.csv")
def export_csv():
    filters = service.parse_filters(request.args, g.user)
    lines = stream_with_context(service.export_lines(filters))
    name = service.export_name(request.args)
    return Response(lines, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


STAT_TABLES = ("days", "hours", "extensions", "groups")


def _stats(filters):
    return kept.get(filters)  # up to half a minute old: the page asks far more often than the figures move


@bp.get("/stats")
def stats_page():
    args = request.args if request.args.get("range") or request.args.get("from") else {**request.args, "range": "7days"}
    filters = service.parse_filters(args, g.user)
    stats = _stats(filters)
    return render_template("calls/stats.html", stats=stats, groups=service.group_names(),
                           filters={k: args[k] for k in FILTER_KEYS if args.get(k)}, tables=STAT_TABLES)


@bp.get("/stats/<table>.csv")
def stats_csv(table):
    if table not in STAT_TABLES:
        from werkzeug.exceptions import NotFound

        raise NotFound()
    args = request.args if request.args.get("range") or request.args.get("from") else {**request.args, "range": "7days"}
    stats = _stats(service.parse_filters(args, g.user))
    names = service.group_names()
    rows = getattr(stats, table).items()
    header = {"days": "day", "hours": "hour", "extensions": "extension", "groups": "group"}[table]

    def lines():
        yield csv_line((header, "calls", "answered", "missed", "average_wait_s", "longest_wait_s", "average_talk_s", "longest_talk_s"))
        for key, tally in rows:
            label = names.get(key, key) if table == "groups" else key
            yield csv_line((label, tally.calls, tally.answered, tally.missed, tally.wait_average, tally.wait_longest,
                            tally.talk_average, tally.talk_longest))

    return Response(lines(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="calls-by-{header}.csv"'})
