"""Stored match keys follow the goal's `match.normalize` before any row is compared with them.

When a goal asks for a normalisation the store's values of that property do
not follow yet (a new option on an existing store, or a changed one), the
stored values are rewritten first, in one transaction: `Ann@Example.com` on
a profile becomes `ann@example.com`, so the next file's `ann@example.com `
finds it. If two profiles would then hold the same value, nothing changes and
the goal fails naming them: merging customers is a decision for a person.
"""

from __future__ import annotations

import structlog

from connector.errors import StoreError
from connector.formats.keys import stored_key_normalizer
from connector.limits import STORE_PAGE_ROWS
from connector.storage import PROFILE_ID, ProfileStore

log = structlog.get_logger("connector.import")
REWRITE_BATCH = STORE_PAGE_ROWS
"""Profiles loaded and saved at a time while their keys are rewritten."""
SHOWN_CLASHES = 5


def align_stored_keys(store: ProfileStore, name: str, mode: str) -> int:
    """Rewrite the stored values of unique property `name` to `mode`; the profiles changed."""
    if name == PROFILE_ID or store.key_normalization(name) == mode:
        return 0
    normalize = stored_key_normalizer(mode)
    owner: dict[str, str] = {}
    renamed: dict[str, dict[str, str]] = {}
    clashes: list[str] = []
    clash_count = 0
    for value, profile_id in store.identifier_values(name):
        new = normalize(value)
        first = owner.setdefault(new, profile_id)
        if first != profile_id:
            clash_count += 1
            if len(clashes) < SHOWN_CLASHES:
                clashes.append(f"{first} and {profile_id} ({new!r})")
        if new != value:
            renamed.setdefault(profile_id, {})[value] = new
    if clash_count:
        more = f" and {clash_count - len(clashes)} more" if clash_count > len(clashes) else ""
        raise StoreError(
            f"cannot normalise the stored values of {name!r} to match.normalize: {mode}: "
            f"profiles {'; '.join(clashes)}{more} would hold the same value; merge or "
            "correct those profiles first (nothing was changed)"
        )
    with store.transaction() as tx:
        ids = list(renamed)
        for start in range(0, len(ids), REWRITE_BATCH):
            profiles = tx.load_profiles(ids[start : start + REWRITE_BATCH])
            for profile in profiles.values():
                rename = renamed[profile.id]
                values = profile.properties.get(name, [])
                profile.properties[name] = list(dict.fromkeys(rename.get(v, v) for v in values))
            tx.save_profiles(profiles.values())
        tx.set_key_normalization(name, mode)
    log.info("stored match keys normalised", property=name, normalize=mode, profiles=len(renamed))
    return len(renamed)


__all__ = ["align_stored_keys"]
