"""The call log pages: calls newest first with filters in the URL, each call expanding into its legs; new
calls polled onto the top; CSV export; statistics with server-rendered charts."""

from flask import Blueprint, Response, g, render_template, request, stream_with_context

from ..csv_cells import csv_line
from ..pages import page_or_fragment
from ..paging import page_request
from . import service
from .kept import exports, kept

bp = Blueprint("calls", __name__, url_prefix="/calls")

FILTER_KEYS = ("range", "from", "to", "number", "extension", "group", "direction", "disposition", "outcome", "min_duration")


def _filter_args() -> dict:
    return {key: request.args[key] for key in FILTER_KEYS if request.args.get(key)}


def _context(filters, page) -> dict:
    return {"page": page, "filters": _filter_args(), "groups": service.group_names(),
            "describe": service.describe, "describe_leg": service.describe_leg, "leg_talk": service.leg_talk, "outcomes": service.OUTCOMES, "directions": service.DIRECTIONS,
            "cursor": request.args.get("cursor")}


@bp.get("")
def list_page():
    filters = service.parse_filters(request.args, g.user)
    page = service.calls_page(filters, page_request(request.args, default_limit=50).limit, request.args.get("cursor"))
    return page_or_fragment("calls/list.html", "calls/_table.html", **_context(filters, page))


@bp.get("/<linkedid>/legs")
def legs(linkedid):
    """A call's legs, in words, fetched when the call is opened (50 calls' legs rendered with every page, mostly
    never opened, were half the page's cost)."""
    call = service.visible_call(linkedid, g.user)
    return render_template("calls/_legs.html", call=call, groups=service.group_names(), describe_leg=service.describe_leg,
                           leg_talk=service.leg_talk)


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
    # Kept per worker while no call is recorded (cdr/kept.py): two people exporting today get the same bytes.
    lines = stream_with_context(exports.lines(filters))
    name = service.export_name(request.args)
    return Response(lines, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


TALLY_TABLES = ("days", "hours", "extensions")
STAT_TABLES = (*TALLY_TABLES, "groups", "agents")


def _period_args() -> dict:
    return {key: request.args[key] for key in ("range", "from", "to") if request.args.get(key)} or {"range": "7days"}


@bp.get("/stats")
def stats_page():
    filters = service.stats_filters(request.args, g.user)
    # Kept up to half a minute per worker (cdr/kept.py): the page is asked far more often than the figures move.
    return render_template("calls/stats.html", stats=kept.get(filters),
                           report=kept.group_report(filters, g.user), groups=service.group_names(),
                           filters=_period_args(), tables=STAT_TABLES)


GROUP_COLUMNS = ("group", "offered", "answered", "picked_up", "abandoned", "abandon_rate_pct", "redirected", "timed_out",
                 "service_level_pct", "service_level_2_pct", "within_s", "average_wait_s", "longest_wait_s", "average_talk_s")
AGENT_COLUMNS = ("agent", "answered", "talk_s", "rang_unanswered", "paused_s")
TALLY_COLUMNS = ("calls", "answered", "missed", "average_wait_s", "longest_wait_s", "average_talk_s", "longest_talk_s")


@bp.get("/stats/<table>.csv")
def stats_csv(table):
    """One table of the statistics page as CSV (csv_line makes names — groups, agents — spreadsheet-safe)."""
    if table not in STAT_TABLES:
        from werkzeug.exceptions import NotFound

        raise NotFound()
    filters = service.stats_filters(request.args, g.user)
    if table == "groups":
        names = service.group_names()
        figures = kept.group_report(filters, g.user)
        header = GROUP_COLUMNS
        # (None, what is not known — a rate of nothing — is an empty cell)
        rows = [(names.get(f.group, f"group {f.group}"), f.offered, f.answered, f.picked_up, f.abandoned, f.abandon_rate,
                 f.redirected, f.timed_out, f.service_level, f.service_level_2, figures.service_level, f.wait_average,
                 f.wait_longest if f.waits else None, f.talk_average) for f in figures.groups]
    elif table == "agents":
        header = AGENT_COLUMNS
        rows = [(a.agent, a.answered, a.talk, a.rang_unanswered, a.paused) for a in kept.group_report(filters, g.user).agents]
    else:
        header = ({"days": "day", "hours": "hour", "extensions": "extension"}[table], *TALLY_COLUMNS)
        rows = [(key, t.calls, t.answered, t.missed, t.wait_average, t.wait_longest, t.talk_average, t.talk_longest)
                for key, t in getattr(kept.get(filters), table).items()]

    def lines():
        yield csv_line(header)
        for row in rows:
            yield csv_line(row)

    return Response(lines(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="calls-by-{header[0]}.csv"'})
