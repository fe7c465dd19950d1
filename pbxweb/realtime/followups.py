"""What a change to Asterisk's rows still needs over AMI once committed — a pure function.

Realtime rows are read on every lookup, except where Asterisk keeps its own copy: outbound registrations
are built when res_pjsip_outbound_registration loads, and a sorcery memory cache (PBX_SORCERY_CACHE) keeps
objects until they expire.
"""

# Sorcery memory caches as sorcery.conf names them (name=<table>), for the tables that have one.
CACHED_TABLES = ("ps_endpoints", "ps_auths", "ps_aors")


def followup_actions(changed: dict[str, set[tuple]], renamed_ids: set[str], sorcery_cache: bool) -> list[tuple[str, dict]]:
    """`changed`: keys of the rows a transaction wrote, per table; `renamed_ids`: ids that rows moved away
    from. Returns (action, fields) pairs, without duplicates, in the order to send them."""
    actions: list[tuple[str, dict]] = []
    if sorcery_cache:
        for table in CACHED_TABLES:
            ids = {key[0] for key in changed.get(table, ())} | renamed_ids
            for object_id in sorted(ids):
                actions.append(("SorceryMemoryCacheExpireObject", {"Cache": table, "Object": object_id}))
    if changed.get("ps_registrations"):
        actions.append(("Reload", {"Module": "res_pjsip_outbound_registration.so"}))
    return actions
