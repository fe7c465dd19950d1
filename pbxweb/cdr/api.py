from flask import g, request

from ..api import api_blueprint
from . import service

bp = api_blueprint("cdr_api", "/api/cdr")


@bp.get("")
def list_calls():
    page = service.calls_page(service.parse_filters(request.args, g.user), service.page_limit(request.args),
                              request.args.get("cursor"))
    return {"calls": [service.call_to_dict(c) for c in page.calls], "next_cursor": page.next_cursor}
