"""Group pages: the list, create and edit with each ring strategy explained, and a group's members —
added from a search, penalty edited in place, the ringing order for hunt, pause as Asterisk reports it.
Managers edit as admins do; QA and agents look (an agent at its own groups only)."""

from flask import Blueprint, render_template, request

from ..auth.access import visible_groups
from ..models import RING_STRATEGIES
from ..realtime.mapping import STRATEGY_TO_ASTERISK
from ..pages import closing, form_data, listing_changed, page_or_fragment
from ..paging import PageRequest, page_request
from ..extensions import service as extensions
from ..validation import ServiceError
from . import service

bp = Blueprint("groups", __name__, url_prefix="/groups")


@bp.context_processor
def strategy_words() -> dict:
    """Every group template names strategies as people do, explains them, and hints at Asterisk's name."""
    return {"strategy_names": service.STRATEGY_NAMES, "help": service.STRATEGY_HELP,
            "asterisk_strategies": STRATEGY_TO_ASTERISK}

FIELDS = ("name", "ring_strategy", "ring_timeout", "musicclass", "max_wait")


def _group(group_id: int) -> dict:
    """The group as the service shows it (auth/access.py has answered 404 for a group this user does not see)."""
    return service.to_dict(service.get_group(group_id))


@bp.get("")
def list_page():
    # Paged like every list: 200 groups on one page were 160 KB and 40 ms to render.
    page = service.page_of_groups(page_request(request.args, default_limit=50), visible_groups())
    groups = [row.ExtensionGroup for row in page.rows]
    return page_or_fragment("groups/list.html", "groups/_table.html", page=page, groups=groups, q=request.args.get("q", ""),
                            counts=service.member_counts([g.id for g in groups]))


def _form(group: dict | None, values, errors, status=200):
    return render_template("groups/_form.html", group=group, values=values, errors=errors, strategies=RING_STRATEGIES), status


@bp.get("/new")
def new_form():
    return _form(None, {}, {})


@bp.post("")
def create():
    data = form_data(FIELDS, ("is_active",))
    try:
        group = service.create_group(data)
    except ServiceError as error:
        return _form(None, request.form, error.errors, error.status)
    return listing_changed(closing())


@bp.get("/<int:group_id>/edit")
def edit_form(group_id):
    group = _group(group_id)
    return _form(group, group, {})


@bp.post("/<int:group_id>")
def update(group_id):
    data = form_data(FIELDS, ("is_active",))
    try:
        group = service.update_group(group_id, data)
    except ServiceError as error:
        if error.status == 404:
            raise
        return _form(_group(group_id), request.form, error.errors, error.status)
    row = render_template("groups/_row.html", group=group, count=len(group["members"]),
                          oob=f"outerHTML:#group-{group_id}")
    header = render_template("groups/_header.html", group=group, oob=True)
    return closing(row + header)


@bp.post("/<int:group_id>/delete")
def delete(group_id):
    service.delete_group(group_id)
    return listing_changed("")


@bp.get("/<int:group_id>")
def detail(group_id):
    group = _group(group_id)
    return render_template("groups/detail.html", group=group, candidates=None)


def _members(group: dict, status: int = 200, error: str | None = None):
    return render_template("groups/_members.html", group=group, error=error), status


def _member_change(group_id: int, change):
    try:
        return _members(change())
    except ServiceError as error:
        if error.status == 404:
            raise
        return _members(_group(group_id), error.status, " ".join(error.errors.values()))


@bp.get("/<int:group_id>/candidates")
def candidates(group_id):
    """Extensions that could join, for the add-member search."""
    group = _group(group_id)
    members = {m["number"] for m in group["members"]}
    page = extensions.list_extensions(PageRequest(limit=20, after=None, q=(request.args.get("q") or "").strip() or None))
    found = [row.Extension for row in page.rows if row.Extension.number not in members]
    return render_template("groups/_candidates.html", group=group, found=found, total=page.total)


@bp.post("/<int:group_id>/members")
def add_member(group_id):
    return _member_change(group_id, lambda: service.add_member(group_id, request.form.get("number", "")))


@bp.post("/<int:group_id>/members/<number>/delete")
def remove_member(group_id, number):
    return _member_change(group_id, lambda: service.remove_member(group_id, number))


@bp.post("/<int:group_id>/members/<number>/penalty")
def set_penalty(group_id, number):
    return _member_change(group_id, lambda: service.set_penalty(group_id, number, request.form.get("penalty", "")))


@bp.post("/<int:group_id>/members/<number>/move")
def move_member(group_id, number):
    step = -1 if request.form.get("direction") == "up" else 1
    return _member_change(group_id, lambda: service.move_member(group_id, number, step))
