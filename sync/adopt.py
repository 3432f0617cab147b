"""A fresh state never takes over a CRM that leadsync already writes to from another state.

A state that has never finished a backfill or sync of a CRM knows nothing of what leadsync wrote there:
if that CRM's records already carry leadsync's fields, some other state (another folder, another machine,
a lost file) owns them, and running on would re-decide every record with whatever model this one has.
So the first run refuses, naming one such record, unless `--new-state` says starting afresh is meant.
Once a run has passed (or `--new-state` was given) the state has adopted the CRM and is not asked again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync.safe_text import plain
from sync.state import State


def _key(source: str) -> str:
    return f"adopted:{source}"


def adopted(state: State, source: str) -> bool:
    """This state already owns `source`: adopted before, or a backfill/sync of it finished here."""
    return state.meta_get(_key(source)) is not None or state.has_written_to(source)


def refusal(state: State, sources: Sequence[str], new_state: bool, dry: bool = False) -> str | None:
    """Why this run must not go on (the first CRM found carrying leadsync's values), or None after adopting
    every source (`dry`: only say, adopt nothing — for `plan`). Runs after the pull, before anything is
    decided or written."""
    fresh = [s for s in sources if not adopted(state, s)]
    if not new_state:
        for source in fresh:
            found = state.record_with_leadsync_values(source)
            if found:
                record_id, email, field = found
                who = f"{record_id} <{email}>" if email else record_id
                return (f"{source} record {plain(who)} already carries leadsync's {field}, but this state "
                        f"({state.describe_url()}) has never synced {source}: another state owns that CRM. "
                        "Point LEADSYNC_STATE_URL at it, or run again with --new-state to start afresh on purpose; "
                        "nothing was written")
    if not dry:
        for source in fresh:
            state.meta_set(_key(source), "1")
    return None
