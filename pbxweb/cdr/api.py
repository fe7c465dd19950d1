from flask import g, request

from ..api import api_blueprint
from ..paging import page_request
from . import report, service

bp = api_blueprint("cdr_api", "/api")


@bp.get("/cdr")
def list_calls():
    page = service.calls_page(service.parse_filters(request.args, g.user),
                              page_request(request.args, default_limit=50).limit, request.args.get("cursor"))
    return {"calls": [service.call_to_dict(c) for c in page.calls], "next_cursor": page.next_cursor}


@bp.get("/calls/stats")
def call_stats():
    """The group report of a period (`from`, `to`: days in the site's zone; the last 7 days by default)."""
    filters = service.stats_filters(request.args, g.user)
    return report.to_dict(service.group_report(filters, g.user), service.group_names())
