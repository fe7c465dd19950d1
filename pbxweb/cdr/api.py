from flask import g, request

from ..api import api_blueprint
from ..paging import page_request
from . import service

bp = api_blueprint("cdr_api", "/api/cdr")


@bp.get("")
def list_calls():
    page = service.calls_page(service.parse_filters(request.args, g.user),
                              page_request(request.args, default_limit=50).limit, request.args.get("cursor"))
    return {"calls": [service.call_to_dict(c) for c in page.calls], "next_cursor": page.next_cursor}
