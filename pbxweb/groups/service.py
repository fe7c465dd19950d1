"""Extension groups (Asterisk queues) and their members."""

import sqlalchemy as sa

from .. import validation as v
from ..ami.outbox import pending_note
from ..ext import db
from ..models import RING_STRATEGIES, Did, Extension, ExtensionGroup, GroupMember
from ..paging import Page, PageRequest, contains, fetch_page
from ..service_base import commit, ensure_unique, get_or_not_found

FIELDS = {"name", "ring_strategy", "ring_timeout", "musicclass", "max_wait", "is_active"}


def _validate(data: dict, creating: bool) -> dict:
    errors = v.Errors()
    for field in sorted(set(data) - FIELDS - {"members"}):
        errors.check(field, False, "is not a field of a group")
    defaults = {"ring_strategy": "ringall", "ring_timeout": 20, "musicclass": "default", "max_wait": 300, "is_active": True}
    values = {}
    for field in FIELDS:
        if field in data or (creating and field in defaults):
            values[field] = data.get(field, defaults.get(field))
        elif creating:
            values[field] = None
    clean = {}
    if "name" in values:
        clean["name"] = v.text(errors, "name", values["name"], max_length=80)
    if "ring_strategy" in values:
        clean["ring_strategy"] = v.choice(errors, "ring_strategy", values["ring_strategy"], RING_STRATEGIES)
    if "ring_timeout" in values:
        clean["ring_timeout"] = v.integer(errors, "ring_timeout", values["ring_timeout"], minimum=5, maximum=600)
    if "musicclass" in values:
        musicclass = v.text(errors, "musicclass", values["musicclass"], max_length=80)
        if musicclass is not None:
            errors.check("musicclass", v.CONTEXT.fullmatch(musicclass) is not None, "must be letters, digits, '-' or '_'")
        clean["musicclass"] = musicclass
    if "max_wait" in values:
        clean["max_wait"] = v.integer(errors, "max_wait", values["max_wait"], minimum=0, maximum=86400)
    if "is_active" in values:
        clean["is_active"] = v.boolean(errors, "is_active", values["is_active"])
    members = None
    if "members" in data:
        members = _validate_members(errors, data["members"])
    errors.raise_if_any()
    if members is not None:
        clean["members"] = members
    return clean


def _lock_extensions(numbers: list[str]) -> dict[str, Extension]:
    """The named extensions, share-locked in id order (before any group: the order every writer uses), so
    none is renamed or deleted while it is being made a member."""
    query = (
        sa.select(Extension).where(Extension.number.in_(numbers)).order_by(Extension.id)
        .with_for_update(read=True).execution_options(populate_existing=True)
    )
    return {e.number: e for e in db.session.scalars(query)}


def _validate_members(errors: v.Errors, items) -> list[tuple[Extension, int, bool]]:
    """Every member must name an existing extension; checked in full before anything is written."""
    if not errors.check("members", isinstance(items, list), "must be a list"):
        return []
    result = []
    seen = set()
    numbers = [i.get("number") for i in items if isinstance(i, dict)]
    by_number = _lock_extensions([n for n in numbers if isinstance(n, str)])
    for index, item in enumerate(items):
        field = f"members[{index}]"
        if not errors.check(field, isinstance(item, dict), "must be an object with a number"):
            continue
        extra = set(item) - {"number", "penalty", "paused"}
        if not errors.check(field, not extra, f"unknown fields: {', '.join(sorted(extra))}"):
            continue
        number = item.get("number")
        extension = by_number.get(number) if isinstance(number, str) else None
        if not errors.check(f"{field}.number", extension is not None, f"extension {number} does not exist"):
            continue
        if not errors.check(f"{field}.number", number not in seen, f"extension {number} is listed twice"):
            continue
        seen.add(number)
        penalty = v.integer(errors, f"{field}.penalty", item.get("penalty", 0), minimum=0, maximum=1000)
        paused = v.boolean(errors, f"{field}.paused", item.get("paused", False))
        result.append((extension, penalty, paused))
    return result


# What each ring strategy does, in the words the group form shows.
# What people call each strategy; Asterisk's own name goes beside it as a hint.
STRATEGY_NAMES = {
    "ringall": "Ring all",
    "hunt": "In order (hunt)",
    "memoryhunt": "Round robin with memory",
    "leastrecent": "Least recent",
    "fewestcalls": "Fewest calls",
    "random": "Random",
}
STRATEGY_HELP = {
    "ringall": "Rings every free member at once; the first to answer takes the call.",
    "hunt": "Rings one member at a time, in the order listed, top first.",
    "memoryhunt": "Rings one member at a time, starting after the one who answered last (round robin).",
    "leastrecent": "Rings the member whose last call ended longest ago.",
    "fewestcalls": "Rings the member who has taken the fewest calls.",
    "random": "Rings one member chosen at random.",
}


def list_groups(visible: set[int] | None = None) -> list[ExtensionGroup]:
    """Every group by name; with `visible`, only those (an agent's own)."""
    query = sa.select(ExtensionGroup).order_by(ExtensionGroup.name)
    if visible is not None:
        query = query.where(ExtensionGroup.id.in_(visible))
    return list(db.session.scalars(query))


def page_of_groups(page: PageRequest, visible: set[int] | None = None) -> Page:
    """One page of groups by name (rows with `.ExtensionGroup`), those whose name contains `q`; with `visible`,
    only those (an agent's own)."""
    query = sa.select(ExtensionGroup, ExtensionGroup.name, ExtensionGroup.id)
    if visible is not None:
        query = query.where(ExtensionGroup.id.in_(visible))
    if page.q:
        query = query.where(contains(ExtensionGroup.name, page.q))
    return fetch_page(db.session, query, (ExtensionGroup.name, ExtensionGroup.id), page)


def member_counts(group_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(sa.select(GroupMember.group_id, sa.func.count())
                              .where(GroupMember.group_id.in_(group_ids)).group_by(GroupMember.group_id))
    return dict(rows.tuples().all())


def _members_as_items(group_id: int) -> list[dict]:
    return [{"number": m["number"], "penalty": m["penalty"]} for m in to_dict(get_group(group_id))["members"]]


def add_member(group_id: int, number: str) -> dict:
    items = _members_as_items(group_id)
    if any(item["number"] == number for item in items):
        raise v.Conflict({"number": f"extension {number} is a member already"})
    return replace_members(group_id, [*items, {"number": number}])


def remove_member(group_id: int, number: str) -> dict:
    return replace_members(group_id, [i for i in _members_as_items(group_id) if i["number"] != number])


def set_penalty(group_id: int, number: str, penalty) -> dict:
    items = _members_as_items(group_id)
    for item in items:
        if item["number"] == number:
            item["penalty"] = penalty
    return replace_members(group_id, items)


def move_member(group_id: int, number: str, step: int) -> dict:
    """One place up (-1) or down (+1) in the ringing order."""
    items = _members_as_items(group_id)
    index = next((i for i, item in enumerate(items) if item["number"] == number), None)
    if index is None:
        raise v.NotFound(f"member {number}")
    other = index + step
    if 0 <= other < len(items):
        items[index], items[other] = items[other], items[index]
    return replace_members(group_id, items)


def get_group(group_id: int, *, lock: bool = False) -> ExtensionGroup:
    return get_or_not_found(ExtensionGroup, f"group {group_id}", id=group_id, lock=lock)


def _check_name_free(name: str, current: ExtensionGroup | None = None) -> None:
    ensure_unique(ExtensionGroup, "name", name, f"a group named {name!r} already exists", current)


def _set_members(group: ExtensionGroup, members: list[tuple[Extension, int, bool]]) -> None:
    current = {m.extension_id: m for m in group.members}
    for position, (extension, penalty, paused) in enumerate(members):
        member = current.pop(extension.id, None)
        if member is None:
            member = GroupMember(extension=extension, paused=paused)
            group.members.append(member)
        # `paused` of an existing member is Asterisk's truth (an agent pauses on the phone or the panel):
        # a members list does not override it.
        member.penalty = penalty
        member.position = position
    for member in current.values():
        group.members.remove(member)


def create_group(data: dict) -> dict:
    clean = _validate(data, creating=True)
    members = clean.pop("members", [])
    _check_name_free(clean["name"])
    group = ExtensionGroup(**clean)
    db.session.add(group)
    _set_members(group, members)
    return commit("name", f"a group named {clean['name']!r} already exists", answer=lambda: to_dict(group))


def update_group(group_id: int, data: dict) -> dict:
    clean = _validate(data, creating=False)
    group = get_group(group_id, lock=True)
    members = clean.pop("members", None)
    if "name" in clean:
        _check_name_free(clean["name"], group)
    for field, value in clean.items():
        setattr(group, field, value)
    if members is not None:
        _set_members(group, members)
    return commit("name", "a group with this name already exists", answer=lambda: _answer(group))


def _answer(group: ExtensionGroup) -> dict:
    """A saved group, and what Asterisk has yet to apply (a switch to hunt waits for an empty queue)."""
    note = pending_note(db.session, queue=group.queue_name)
    return {**to_dict(group), "asterisk": note} if note else to_dict(group)


def replace_members(group_id: int, items) -> dict:
    errors = v.Errors()
    members = _validate_members(errors, items)
    errors.raise_if_any()
    group = get_group(group_id, lock=True)
    _set_members(group, members)
    return commit(answer=lambda: to_dict(group))


def delete_group(group_id: int) -> None:
    group = get_group(group_id, lock=True)
    dids = db.session.scalars(sa.select(Did.number).where(Did.destination_type == "group", Did.destination_id == group.id)).all()
    if dids:
        raise v.Conflict({"id": f"DIDs route to this group: {', '.join(dids)}"})
    db.session.delete(group)
    commit()


def to_dict(group: ExtensionGroup) -> dict:
    # The members' extensions in one query, not one each (a group of 100 took 100); a member added in this
    # very request has no id yet and brings its extension along.
    ids = [m.extension_id for m in group.members if m.extension_id]
    extensions = {e.id: e for e in db.session.scalars(sa.select(Extension).where(Extension.id.in_(ids)))} if ids else {}
    return {
        "id": group.id,
        "name": group.name,
        "queue": group.queue_name,
        "ring_strategy": group.ring_strategy,
        "ring_timeout": group.ring_timeout,
        "musicclass": group.musicclass,
        "max_wait": group.max_wait,
        "is_active": group.is_active,
        "members": [
            {"number": extension.number, "name": extension.name, "penalty": m.penalty, "paused": m.paused}
            for m in sorted(group.members, key=lambda m: m.position)
            for extension in (extensions.get(m.extension_id) or m.extension,)
        ],
    }
