"""What a change to Asterisk's rows still needs over AMI once committed — a pure function.

Realtime rows are read on every lookup, except where Asterisk keeps its own copy: outbound registrations
are built when res_pjsip_outbound_registration loads, a sorcery memory cache (PBX_SORCERY_CACHE) keeps
objects until they expire, and a loaded queue ignores a change of its strategy to `linear` (Asterisk 22:
"Changing to the linear strategy currently requires asterisk to be restarted") — such a queue is rebuilt
(`REBUILD_QUEUE`, carried out by ami/outbox.py).
"""

from .diff import TableChanges

# Not AMI actions: the outbox's names for "drop this queue from Asterisk's memory and load it again" and for
# "make this hunt queue ring its members in the app's order" (ring_order.py; a rebuild ends with it too).
REBUILD_QUEUE = "RebuildQueue"
ORDER_QUEUE = "OrderQueueMembers"

# Sorcery memory caches as sorcery.conf names them (name=<table>), for the tables that have one.
CACHED_TABLES = ("ps_endpoints", "ps_auths", "ps_aors")


def followup_actions(changed: dict[str, TableChanges], renamed_ids: set[str], sorcery_cache: bool,
                     reordered_queues: set[str] = frozenset()) -> list[tuple[str, dict]]:
    """`changed`: what a transaction wrote, per table; `renamed_ids`: ids that rows moved away from;
    `reordered_queues`: hunt queues whose members were added or moved (no row says a member's place, and
    Asterisk puts a member it finds in a loaded queue last). Returns (action, fields) pairs, without
    duplicates, in the order to send them."""
    actions: list[tuple[str, dict]] = []
    if sorcery_cache:
        for table in CACHED_TABLES:
            ids = {key[0] for key in (changed[table].keys() if table in changed else ())} | renamed_ids
            for object_id in sorted(ids):
                actions.append(("SorceryMemoryCacheExpireObject", {"Cache": table, "Object": object_id}))
    if "ps_registrations" in changed:
        actions.append(("Reload", {"Module": "res_pjsip_outbound_registration.so"}))
    # An UPDATE to linear: a queue that did not exist before (INSERT) is loaded with it anyway.
    queues = changed.get("asterisk_queues")
    for (name,), values in sorted(queues.updates, key=lambda update: update[0]) if queues else ():
        if values.get("strategy") == "linear":
            actions.append((REBUILD_QUEUE, {"Queue": name}))
    rebuilt = {fields["Queue"] for action, fields in actions if action == REBUILD_QUEUE}
    actions += [(ORDER_QUEUE, {"Queue": name}) for name in sorted(reordered_queues - rebuilt)]
    return actions
