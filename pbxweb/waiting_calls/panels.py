"""The dashboard's panels, rendered from one set of partials for the first page load and for every push over
the live socket (each as an out-of-band fragment replacing its element by id). What a user sees is filtered
by the same rules as the API: an agent, its own groups and their members only."""

import sqlalchemy as sa
from flask import current_app, render_template

from ..cdr import service as calls
from ..ext import db
from ..live import store
from ..models import Extension, ExtensionGroup, GroupMember


def _visible_extensions(groups: set[int] | None, group_filter: int | None = None) -> list[dict]:
    query = sa.select(Extension.number, Extension.name).where(Extension.is_active).order_by(Extension.number)
    wanted = groups if group_filter is None else ({group_filter} if groups is None or group_filter in groups else set())
    if wanted is not None:
        query = query.where(Extension.id.in_(sa.select(GroupMember.extension_id).where(GroupMember.group_id.in_(wanted))))
    return [{"number": r.number, "name": r.name} for r in db.session.execute(query)]


def presence(user, numbers: list[str] | None = None, group_filter: int | None = None) -> list[dict]:
    """Extensions with what Asterisk last said of them (all visible ones, or those `numbers`)."""
    extensions = _visible_extensions(store.visible_group_ids(db.session, user), group_filter)
    if numbers is not None:
        extensions = [e for e in extensions if e["number"] in set(numbers)]
    statuses = store.statuses_of(db.session, [e["number"] for e in extensions])
    return [{**e, "status": statuses.get(e["number"])} for e in extensions]


def waiting(user) -> list[dict]:
    calls_waiting = store.waiting_calls(db.session, store.visible_group_ids(db.session, user))
    return sorted(calls_waiting, key=lambda c: c["joined_at"])


def today(user) -> calls.Statistics:
    return calls.statistics(calls.iter_calls(calls.parse_filters({"range": "today"}, user)))


def _active_groups() -> list:
    """Every active group (id, name): where a caller may be redirected to."""
    query = sa.select(ExtensionGroup.id, ExtensionGroup.name).where(ExtensionGroup.is_active).order_by(ExtensionGroup.name)
    return db.session.execute(query).all()


def context(user, group_filter: int | None = None) -> dict:
    groups = store.visible_group_ids(db.session, user)
    all_groups = _active_groups()
    return {
        "ami": store.ami_status(db.session),
        "extensions": presence(user, group_filter=group_filter),
        "waiting": waiting(user),
        "stats": today(user),
        "groups": [g for g in all_groups if groups is None or g.id in groups],
        "redirect_groups": all_groups,
        "group_filter": group_filter,
        "wait_warn": current_app.config["PBX_WAIT_WARN_SECONDS"],
        "user": user,
    }


def viewer(user) -> tuple:
    """What a push depends on for this user: its role (what it may do) and the groups it may see, and
    whether it has a phone to call from. Connections with the same viewer share one rendering."""
    groups = store.visible_group_ids(db.session, user)
    return (user.role, None if groups is None else frozenset(groups), user.extension_id is not None)


# The panels a socket replaces, each by its id. The page's layout around them is not pushed: the ws
# extension swaps each top-level element by id, and one without (the layout) is an oobErrorNoTarget.
PANELS = ("dashboard/_banner.html", "dashboard/_waiting.html", "dashboard/_presence.html", "dashboard/_today.html")


def all_panels(user) -> str:
    """Every panel as an out-of-band fragment: what a (re)connected browser gets first."""
    values = context(user)
    return "".join(render_template(panel, oob=True, **values) for panel in PANELS)


def changes(user, message: dict) -> str:
    """The fragments a live change needs, for this user; empty when it sees none of it."""
    if message.get("replace"):
        return all_panels(user)
    parts = []
    ami = store.ami_status(db.session)
    if "ami" in message:
        parts.append(render_template("dashboard/_banner.html", ami=ami, oob=True))
        parts.append(render_template("dashboard/_presence.html", extensions=presence(user), ami=ami, oob=True, user=user))
    elif message.get("extensions"):
        for extension in presence(user, numbers=message["extensions"]):
            parts.append(render_template("dashboard/_extension.html", extension=extension, ami=ami, oob=True, user=user))
    if message.get("waiting"):
        parts.append(render_template("dashboard/_waiting.html", waiting=waiting(user), ami=ami, oob=True, user=user,
                                     redirect_groups=_active_groups(), wait_warn=current_app.config["PBX_WAIT_WARN_SECONDS"]))
    if message.get("cdr"):
        parts.append(render_template("dashboard/_today.html", stats=today(user), oob=True))
    return "".join(parts)
