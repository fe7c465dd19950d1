"""The audit log page (admin only): newest first, filtered by who, what kind of object and when."""

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from flask import Blueprint, request

from ..ext import db
from ..models import AuditEntry
from ..pages import page_or_fragment
from ..paging import fetch_page, page_request
from ..validation import Errors
from ..site_time import site_zone
from . import OBJECT_TYPES, describe

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _day(errors: Errors, field: str, value: str | None):
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        errors.check(field, False, "must be a date (YYYY-MM-DD)")
        return None


@bp.get("")
def list_page():
    errors = Errors()
    actor = (request.args.get("actor") or "").strip()
    object_type = request.args.get("type") or ""
    errors.check("type", object_type in ("", *OBJECT_TYPES), f"must be one of {', '.join(OBJECT_TYPES)}")
    since, until = _day(errors, "from", request.args.get("from")), _day(errors, "to", request.args.get("to"))
    errors.raise_if_any()
    entries = sa.select(AuditEntry, AuditEntry.id)
    if actor:
        entries = entries.where(sa.or_(AuditEntry.actor == actor, AuditEntry.actor.endswith(":" + actor)))
    if object_type:
        entries = entries.where(AuditEntry.object_type == object_type)
    # Days are the site's days.
    if since:
        entries = entries.where(AuditEntry.at >= datetime.combine(since, time.min, tzinfo=site_zone()))
    if until:
        entries = entries.where(AuditEntry.at < datetime.combine(until + timedelta(days=1), time.min, tzinfo=site_zone()))
    page = fetch_page(db.session, entries, (AuditEntry.id,), page_request(request.args, default_limit=50), descending=True)
    actors = db.session.scalars(sa.select(AuditEntry.actor).distinct().order_by(AuditEntry.actor).limit(200)).all()
    filters = {"actor": actor or None, "type": object_type or None, "from": request.args.get("from") or None,
               "to": request.args.get("to") or None}
    return page_or_fragment("audit/list.html", "audit/_table.html", page=page, entries=[r.AuditEntry for r in page.rows],
                            actors=actors, types=OBJECT_TYPES, filters=filters,
                            describe=describe)
