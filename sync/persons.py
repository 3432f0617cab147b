"""Persons from the state store: gather the records that may be one human with a batch, and resolve them.

The pure rules live in `mapping/identity.py`; this module only fetches what they need: the records a batch
names by link, the records that name the batch, the records sharing an email, and the manual decisions
touching any of them, a few hops out (a chain longer than that is cut, and its far end decided on its own
turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mapping.identity import Conflict, Identity, Override, Person, RecordRef, normalise_email, resolve
from mapping.model import Contact
from sync.state import State, contact_from_json

HOPS = 3


def ref(c: Contact) -> RecordRef:
    return RecordRef(c.key, c.source, c.object_type, normalise_email(c.email), c.links, c.archived,
                     c.read_only and c.object_type == "Lead")


def _overrides(rows: Iterable[tuple[str, str, str]]) -> list[Override]:
    return [Override(kind, a, b) for kind, a, b in rows]


@dataclass
class Batch:
    """The records around a batch, and who is whom among them."""

    records: dict[str, Contact]
    identity: Identity

    def person_of(self) -> dict[str, Person]:
        return self.identity.by_record()

    def conflicted(self) -> set[str]:
        return {k for c in self.identity.conflicts for k in c.records}


def gather(state: State, seeds: Sequence[Contact]) -> Batch:
    known: dict[str, Contact] = {c.key: c for c in seeds}
    frontier = list(seeds)
    emails_seen: set[str] = set()
    for _ in range(HOPS):
        emails = {e for c in frontier if (e := normalise_email(c.email))} - emails_seen
        emails_seen |= emails
        keys = {t for c in frontier for t in c.links}
        keys |= set(state.keys_linking_to([c.key for c in frontier]))
        for _kind, a, b in state.overrides([c.key for c in frontier]):
            keys |= {a, b} - {""}
        keys |= set(state.keys_by_emails(emails))
        frontier = list(state.records(keys - set(known)).values())
        known.update((c.key, c) for c in frontier)
        if not frontier:
            break
    identity = resolve([ref(c) for c in known.values()], _overrides(state.overrides(known)))
    return Batch(known, identity)


def whole_identity(state: State) -> tuple[Identity, dict[str, RecordRef]]:
    """Every stored record resolved at once (reports, `identity conflicts`): O(records), no CRM calls."""
    refs = {}
    for source, rid, _object_type, _email, data in state.identity_refs():
        c = contact_from_json(data)
        refs[f"{source}:{rid}"] = ref(c)
    return resolve(list(refs.values()), _overrides(state.overrides())), refs


def conflicts(state: State) -> list[Conflict]:
    return whole_identity(state)[0].conflicts
