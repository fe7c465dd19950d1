"""The dashboard's panels, rendered from one set of partials for the first page load and for every push over
the live socket (each as an out-of-band fragment replacing its element by id). What a user sees is filtered
by the same rules as the API: an agent, its own groups and their members only.

The presence grid stays small whatever the site's size: one page of the extensions in view (a group, or every
one the viewer may see, narrowed by a search), with counts by state over the whole group at the top. A push
carries the cards of that page that changed, and the counts when they moved."""

import time
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, render_template, request
from gevent.event import AsyncResult
from markupsafe import Markup

from .. import validation as v
from ..cdr import service as calls
from ..cdr.kept import kept as kept_statistics
from ..ext import db
from ..live import hub, store
from ..models import Extension, ExtensionGroup, GroupMember
from ..paging import Page, PageRequest, contains, fetch_page, page_request
from ..site_time import site_zone

# Cards on one page of the grid: more than a 1080p screen shows, and about 50 KB of HTML.
PAGE_SIZE = 100
STATES = ("idle", "in_call", "ringing", "paused", "offline")


@dataclass(frozen=True)
class PresenceView:
    """Which extensions a dashboard shows: a group (None: every one the viewer may see), a search, a page."""

    group: int | None = None
    q: str | None = None
    after: tuple = ()
    before: tuple = ()

    def args(self) -> dict:
        """The query string that shows this view again (the page's links, the socket's URL)."""
        from ..paging import encode_cursor

        args = {"group": self.group, "q": self.q, "cursor": self.after and encode_cursor(list(self.after)),
                "before": self.before and encode_cursor(list(self.before))}
        return {k: value for k, value in args.items() if value}


def presence_view(args) -> PresenceView:
    """The view a request's query string asks for; a 400 names a bad value."""
    errors = v.Errors()
    group = None
    if args.get("group"):
        group = v.integer(errors, "group", args["group"], minimum=1, maximum=2**31 - 1)
    errors.raise_if_any()
    page = page_request({k: args[k] for k in ("q", "cursor", "before") if args.get(k)})
    return PresenceView(group, page.q, tuple(page.after or ()), tuple(page.before or ()))


def _scope(groups: set[int] | None, group_filter: int | None) -> set[int] | None:
    """The groups whose members are in view (None: every extension)."""
    if group_filter is None:
        return groups
    return {group_filter} if groups is None or group_filter in groups else set()


def _in_scope(query, scope: set[int] | None):
    query = query.where(Extension.is_active)
    if scope is not None:
        query = query.where(Extension.id.in_(sa.select(GroupMember.extension_id).where(GroupMember.group_id.in_(scope))))
    return query


def _with_status():
    """Extensions with what Asterisk last said of them (a card's values), in one query."""
    status = store.status_t
    return (sa.select(Extension.number, Extension.name, *store.STATUS_COLUMNS)
            .select_from(Extension.__table__.outerjoin(status, status.c.number == Extension.number)))


def _cards(scope: set[int] | None):
    """The extensions in scope with what Asterisk last said of them."""
    return _in_scope(_with_status(), scope)


def _card(row) -> dict:
    """A card's values: the extension, and its status as store.statuses_of gives it (None: Asterisk said nothing)."""
    return {"number": row.number, "name": row.name, "status": store.status_of(row)}


# Cards by what they show, kept per process: a page of the grid is 100 cards, and rendering them was half of
# the dashboard's time, while a card changes only when its extension does. The key holds everything the
# partial reads: its values, and the zone and URL prefix that its times and links are written in. The least
# recently shown go first: about 2 KB each.
_kept_cards: OrderedDict = OrderedDict()
KEPT_CARDS = 10_000


def _frozen(value):
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return (type(value).__name__, *(_frozen(item) for item in (sorted(value) if isinstance(value, (set, frozenset)) else value)))
    return value


def card(extension: dict, ami: dict, with_call: bool, card_id: str | None = None, oob: bool = False) -> Markup:
    """An extension's card (dashboard/_extension.html): in the grid, as the viewer's own (`card_id`), or
    pushed (`oob`); `with_call`: the viewer has a phone to call it from."""
    values = {"extension": extension, "ami": ami, "with_call": with_call, "card_id": card_id, "oob": oob}
    key = (_frozen(values), str(site_zone()), request.script_root)
    html = _kept_cards.get(key)
    if html is not None:
        _kept_cards.move_to_end(key)
        return html
    html = _kept_cards[key] = Markup(render_template("dashboard/_extension.html", **values))
    if len(_kept_cards) > KEPT_CARDS:
        _kept_cards.popitem(last=False)
    return html


def presence_page(user, view: PresenceView) -> Page:
    """One page of the extensions in view, by number, each with what Asterisk last said of it."""
    query = _cards(_scope(store.visible_group_ids(db.session, user), view.group))
    if view.q:
        query = query.where(sa.or_(contains(Extension.number, view.q), contains(Extension.name, view.q)))
    page = fetch_page(db.session, query, (Extension.number,), PageRequest(PAGE_SIZE, list(view.after) or None, view.q,
                                                                          list(view.before) or None))
    page.rows = [_card(row) for row in page.rows]
    return page


def own_card(user) -> dict | None:
    """The card of the viewer's own extension (None: it has none), in view or not: its owner's state at a glance."""
    if user.extension_id is None:
        return None
    row = db.session.execute(_with_status().where(Extension.id == user.extension_id)).first()
    return _card(row) if row is not None else None


def presence(user, numbers, view: PresenceView, message: dict | None = None) -> list[dict]:
    """Those of `numbers` (on the viewer's page) that are still in view, with their status. With the live
    `message` they changed in: read once per message for all viewers of the same scope (roles that see every
    group share it), not once per kind of viewer."""
    scope = _scope(store.visible_group_ids(db.session, user), view.group)
    key = (_scope_key(scope), frozenset(numbers))
    read = {} if message is None else message.setdefault("_cards", {})
    if key not in read:
        query = _cards(scope).where(Extension.number.in_(sorted(numbers)))
        read[key] = [_card(row) for row in db.session.execute(query.order_by(Extension.number))]
    return read[key]


def _counts(scope: set[int] | None) -> dict[str, int]:
    status = store.status_t
    member = GroupMember.__table__
    # One set of the paused, not a look-up per extension (a third of the time at 20,000).
    paused = sa.select(member.c.extension_id).where(member.c.paused)
    if scope is not None:
        paused = paused.where(member.c.group_id.in_(scope))
    state = sa.case(
        (sa.func.coalesce(status.c.registration, "offline") != "registered", "offline"),
        (status.c.device_state.in_(("RINGING", "RINGINUSE")), "ringing"),
        (status.c.device_state.in_(("INUSE", "BUSY", "ONHOLD")), "in_call"),
        (Extension.id.in_(paused), "paused"),
        else_="idle",
    ).label("state")
    per_extension = _in_scope(
        sa.select(state).select_from(Extension.__table__.outerjoin(status, status.c.number == Extension.number)), scope
    ).subquery()
    found = dict(db.session.execute(sa.select(per_extension.c.state, sa.func.count()).group_by(per_extension.c.state)).all())
    return {name: found.get(name, 0) for name in STATES}


# Counts by state are read at most once a second per scope in each process for pages and first frames
# (30 ms at 20,000 extensions); each push of them reads them anew.
COUNTS_MAX_AGE = 1.0
# Per scope (a frozenset of groups, None: every extension): (read at, counts) kept, and the counts last pushed.
_kept_counts: dict = {}
_pushed_counts: dict = {}


def _scope_key(scope: set[int] | None):
    return None if scope is None else frozenset(scope)


def counts(user, view: PresenceView) -> dict[str, int]:
    """How many extensions in view (the search aside) are idle, in a call, ringing, paused or offline — the
    same reading of Asterisk's states as each card's (the `presence` macro); paused: in a group in view."""
    scope = _scope(store.visible_group_ids(db.session, user), view.group)
    kept = _kept_counts.get(_scope_key(scope))
    if kept is not None and time.monotonic() - kept[0] < COUNTS_MAX_AGE:
        return kept[1]
    return _read_counts(scope)


def _read_counts(scope: set[int] | None) -> dict[str, int]:
    now = time.monotonic()
    for stale in [key for key, (at, _) in _kept_counts.items() if now - at >= COUNTS_MAX_AGE]:
        del _kept_counts[stale]
    found = _kept_counts[_scope_key(scope)] = (now, _counts(scope))
    return found[1]


def _moved_counts(user, view: PresenceView, message: dict) -> dict | None:
    """The counts of the viewer's scope if they moved since this process last pushed them, else None. Every
    viewer of a scope is handed the same message: the first reads the counts, the others take its answer."""
    scope = _scope(store.visible_group_ids(db.session, user), view.group)
    key = _scope_key(scope)
    answers = message.setdefault("_counts", {})
    if key not in answers:
        now = _read_counts(scope)
        answers[key] = now if _pushed_counts.get(key) != now else None
        _pushed_counts[key] = now
    return answers[key]


def waiting(user) -> list[dict]:
    calls_waiting = store.waiting_calls(db.session, store.visible_group_ids(db.session, user))
    return sorted(calls_waiting, key=lambda c: c["joined_at"])


def today(user, fresh: bool = False) -> calls.Statistics:
    """Today's figures (an agent: its own calls), kept a little per process (cdr/kept.py); `fresh`: read now."""
    return kept_statistics.get(calls.parse_filters({"range": "today"}, user), fresh)


def _active_groups() -> list:
    """Every active group (id, name): where a caller may be redirected to."""
    query = sa.select(ExtensionGroup.id, ExtensionGroup.name).where(ExtensionGroup.is_active).order_by(ExtensionGroup.name)
    return db.session.execute(query).all()


def presence_context(user, view: PresenceView, active_groups: list | None = None) -> dict:
    """What the presence panel (counts, one page of cards, paging) renders from; `active_groups`: already read."""
    groups = store.visible_group_ids(db.session, user)
    return {
        "ami": store.ami_status(db.session),
        "view": view,
        "page": presence_page(user, view),
        "counts": counts(user, view),
        "groups": [g for g in (_active_groups() if active_groups is None else active_groups) if groups is None or g.id in groups],
        "user": user,
    }


def context(user, view: PresenceView) -> dict:
    all_groups = _active_groups()
    return {
        **presence_context(user, view, all_groups),
        "own": own_card(user),
        "waiting": waiting(user),
        "stats": today(user),
        "redirect_groups": all_groups,
        "wait_warn": current_app.config["PBX_WAIT_WARN_SECONDS"],
    }


def viewer(user, view: PresenceView) -> tuple:
    """What the panels depend on for this user: its role (what it may do) and the groups it may see, whether it
    has a phone to call from, an agent's own extension (its own calls today), and the view it looks at.
    Connections with the same viewer share one rendering."""
    groups = store.visible_group_ids(db.session, user)
    # `user.extension`, not its id: the cards ask for it when the socket no longer holds a session. Its id:
    # the viewer's own card (and an agent's own calls today).
    return (user.role, None if groups is None else frozenset(groups), user.extension is not None, user.extension_id, view)


# The panels a socket replaces, each by its id. The page's layout around them is not pushed: the ws
# extension swaps each top-level element by id, and one without (the layout) is an oobErrorNoTarget.
PANELS = ("dashboard/_banner.html", "dashboard/_waiting.html", "dashboard/_presence_counts.html",
          "dashboard/_presence.html", "dashboard/_today.html")
# The viewer's own card, above the panels; only for a viewer who has an extension (no element to replace otherwise).
OWN_PANEL = "dashboard/_own.html"


def all_panels(user, view: PresenceView) -> tuple[str, frozenset]:
    """Every panel as an out-of-band fragment, and the numbers on the viewer's page of the grid (the only
    cards its pushes carry)."""
    values = context(user, view)
    html = "".join(render_template(panel, oob=True, **values) for panel in PANELS)
    if values["own"] is not None:
        html += render_template(OWN_PANEL, oob=True, **values)
    return html, frozenset(row["number"] for row in values["page"].rows)


# First frames rendered or being rendered, per viewer: (the hub's count of messages when it began, the frame).
_first_frames: dict = {}


def first_frame(user, view: PresenceView, subscribed_at: int) -> tuple[str, frozenset]:
    """What a (re)connected browser gets first: every panel (all_panels). A thousand browsers reconnecting at
    once share the renderings: one begun after this connection subscribed to the hub (`subscribed_at`, the
    hub's count of messages then), or with no message published since it began, misses nothing this
    connection would not be sent anyway."""
    key = viewer(user, view)
    kept = _first_frames.get(key)
    if kept is not None and kept[0] >= subscribed_at:
        return kept[1].get()
    frame = AsyncResult()
    begun = hub.hub.published
    for stale in [k for k, (at, _) in _first_frames.items() if at < begun]:
        del _first_frames[stale]  # no connection subscribing from now on could use it
    _first_frames[key] = (begun, frame)
    try:
        frame.set(all_panels(user, view))
    except Exception as exc:  # noqa: BLE001 — the connections waiting for it must not hang
        frame.set_exception(exc)
        _first_frames.pop(key, None)
        raise
    return frame.get()


# Whether Asterisk is reachable, for pushes: read at most twice a second in this process (under load every
# message asked for it, fifty a second), and anew after a message saying it changed ("ami", "replace"). Such a
# message moves the generation, so a read begun before it is not kept after it.
AMI_STATUS_MAX_AGE = 0.5
_read_ami_status: dict = {"generation": 0}


def _forget_ami_status(message: dict) -> None:
    if "ami" in message or message.get("replace"):
        if not message.setdefault("_ami_forgotten", False):
            message["_ami_forgotten"] = True
            _read_ami_status.update(generation=_read_ami_status["generation"] + 1, status=None)


def _ami_status(message: dict) -> dict:
    """Whether Asterisk is reachable, once per message (every viewer is handed the same)."""
    if "_ami_status" not in message:
        now = time.monotonic()
        kept = _read_ami_status
        if kept.get("status") is not None and now - kept["at"] < AMI_STATUS_MAX_AGE:
            message["_ami_status"] = kept["status"]
        else:
            generation = kept["generation"]
            message["_ami_status"] = status = store.ami_status(db.session)
            if generation == kept["generation"]:
                kept.update(at=now, status=status)
    return message["_ami_status"]


def changes(user, message: dict, view: PresenceView, shown: frozenset) -> str:
    """The fragments a live change needs, for this user and the page it looks at (`shown`: the numbers on
    it); empty when it sees none of it."""
    _forget_ami_status(message)
    if message.get("replace"):
        return all_panels(user, view)[0]
    parts = []
    own = user.extension.number if user.extension is not None else None
    own_changed = own is not None and own in (message.get("extensions") or ())
    ami = _ami_status(message) if "ami" in message or message.get("waiting") or own_changed or shown.intersection(
        message.get("extensions") or ()) else None
    if own is not None and ("ami" in message or own_changed):
        parts.append(render_template(OWN_PANEL, own=own_card(user), ami=ami, oob=True))
    if "ami" in message:
        parts.append(render_template("dashboard/_banner.html", ami=ami, oob=True))
        parts.append(render_template("dashboard/_presence.html", page=presence_page(user, view), ami=ami, oob=True, user=user))
    elif message.get("extensions"):
        changed = shown.intersection(message["extensions"])
        for extension in presence(user, changed, view, message) if changed else ():
            parts.append(card(extension, ami, with_call=user.extension is not None, oob=True))
    if message.get("counts"):
        moved = _moved_counts(user, view, message)
        if moved is not None:
            parts.append(render_template("dashboard/_presence_counts.html", counts=moved, oob=True))
    if message.get("waiting"):
        parts.append(render_template("dashboard/_waiting.html", waiting=waiting(user), ami=ami, oob=True, user=user,
                                     redirect_groups=_active_groups(), wait_warn=current_app.config["PBX_WAIT_WARN_SECONDS"]))
    if message.get("cdr"):
        # Today's calls read once per message in this process, however many viewers render it.
        read = message.setdefault("_today_read", set())
        key = calls.parse_filters({"range": "today"}, user).own_extension
        parts.append(render_template("dashboard/_today.html", stats=today(user, fresh=key not in read), oob=True))
        read.add(key)
    return "".join(parts)
