"""The order in which a hunt group (Asterisk's `linear`) rings its members — pure functions.

What Asterisk 22.10.1 does (seen on the lab): a `linear` queue rings its members in the order of its member
list in memory. A queue loaded fresh (at Asterisk's start, at its first lookup, after a rebuild) builds that
list from res_config_odbc's `… ORDER BY interface`, whatever the rows' uniqueid or insertion order; a member
that appears in the table of a loaded queue is put at the end of the list; reordering the rows changes
nothing; a member removed (its row gone, then a lookup) and added back goes to the end. So the app's order
(GroupMember.position) is made Asterisk's by taking members out and putting them back in that order
(ami/outbox.py, `ORDER_QUEUE`).
"""

LINEAR = "linear"


def reported_ring_order(events) -> tuple[str | None, list[str]]:
    """(strategy, member interfaces in the order Asterisk keeps them) from a QueueStatus answer for one queue:
    Asterisk lists a queue's members (QueueMember events) in its member list's order."""
    strategy = next((e.get("Strategy") for e in events if e.get("Event") == "QueueParams"), None)
    return strategy, [e.get("Location") for e in events if e.get("Event") == "QueueMember"]


def wanted_ring_orders(queue_rows: list[dict], member_rows: list[dict]) -> dict[str, list[str]]:
    """queue → its members' interfaces in the app's order, for every `linear` queue, from the rows the models
    want (mapping.group_rows lists a group's members in their ringing order)."""
    orders = {q["name"]: [] for q in queue_rows if q.get("strategy") == LINEAR}
    for member in member_rows:
        if member["queue_name"] in orders:
            orders[member["queue_name"]].append(member["interface"])
    return orders


def reorder_plan(current: list[str], wanted: list[str]) -> list[str]:
    """Which members to take out of a loaded queue and put back, one by one in this order, so that it rings
    `wanted`: all of `wanted` after its longest beginning that `current` already holds in that order (those
    stay in: the queue is never left without the members still to come first), since Asterisk appends each
    member put back. Empty when `current` already rings as wanted."""
    kept, after = 0, 0
    for interface in wanted:
        if interface not in current[after:]:
            break
        after = current.index(interface, after) + 1
        kept += 1
    return wanted[kept:]


def ring_order_mismatches(wanted: dict[str, list[str]], reported: dict[str, tuple[str | None, list[str]]]) -> list[str]:
    """For `pbx verify`: each hunt queue whose members Asterisk rings in another order than the app's, in
    words. A queue Asterisk does not run as `linear` (yet) is the outbox's switch to hunt, checked apart."""
    problems = []
    for queue, order in sorted(wanted.items()):
        strategy, members = reported.get(queue, (None, []))
        if strategy == LINEAR and members != order:
            problems.append(f"{queue} rings {', '.join(members) or 'nobody'}; the app lists {', '.join(order) or 'nobody'}")
    return problems
