"""Records → persons: which CRM records are one human. Pure: no I/O, no clock.

Evidence, strongest first (never fuzzy names):
1. a person's manual decision (`leadsync identity link/unlink`), above everything automatic;
2. explicit cross-CRM ids: HubSpot's native-connector `salesforceleadid` / `salesforcecontactid`, leadsync's
   own link fields, a converted Lead's `ConvertedContactId`;
3. the normalised email (trimmed, lower-cased; blank or invalid addresses are no evidence).

Email follows Salesforce's own order: a Contact wins over Leads with the same address (the person was
converted). An email that would put two live, writable records of one CRM into one person (two live Leads,
two Contacts, two HubSpot contacts, or an address that points away from what explicit ids say) is
ambiguous: it links nothing, and the conflict is reported with its records and reason until a person decides.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BASE62 = string.ascii_uppercase + "012345"
_UPPER = str.maketrans({c: "1" if c in string.ascii_uppercase else "0" for c in string.ascii_letters + string.digits})

#: The CRM on the other side of a HubSpot ⇄ Salesforce pair (where each one's link field points).
OTHER_CRM = {"hubspot": "salesforce", "salesforce": "hubspot"}
#: Evidence names, as `explain` and `identity show` print them.
OVERRIDE, EXPLICIT, EMAIL = "manual link", "cross-CRM id", "email"


def normalise_email(value: str | None) -> str | None:
    """The address as identity compares it; None when blank or not an address."""
    if not value:
        return None
    text = value.strip().lower()
    return text if _EMAIL.match(text) else None


def salesforce_id18(value: str | None) -> str | None:
    """A Salesforce id in its 18-character, case-insensitive-safe form (15-char ids get their checksum).

    HubSpot's connector and people pasting ids use either form; identity must see one spelling.
    """
    if not value:
        return None
    text = value.strip()
    if len(text) == 18 or len(text) != 15 or not (text.isascii() and text.isalnum()):
        return text or None
    bits = text.translate(_UPPER)
    return text + "".join(_BASE62[int(bits[i:i + 5][::-1], 2)] for i in (0, 5, 10))


@dataclass(frozen=True, slots=True)
class RecordRef:
    """What identity needs of one stored record."""

    key: str  # "source:id"
    source: str
    object_type: str
    email: str | None  # normalised
    links: tuple[str, ...] = ()
    archived: bool = False
    converted: bool = False  # a converted Lead: history of its Contact, never written

    @property
    def writable(self) -> bool:
        return not (self.archived or self.converted)


@dataclass(frozen=True, slots=True)
class Override:
    """`link` joins a and b; `unlink` makes a a person of its own (b is empty)."""

    kind: str
    a: str
    b: str = ""


@dataclass(frozen=True, slots=True)
class Conflict:
    records: tuple[str, ...]
    reason: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    key: str
    records: tuple[str, ...]
    #: How each record joined (record key → evidence); the anchor record has none.
    evidence: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Identity:
    persons: list[Person]
    conflicts: list[Conflict]

    def by_record(self) -> dict[str, Person]:
        return {r: p for p in self.persons for r in p.records}


class _Sets:
    """Union-find over record keys, remembering the evidence of each join."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {k: k for k in keys}
        self.members: dict[str, list[str]] = {k: [k] for k in self.parent}  # by root: O(size) per check
        self.evidence: dict[str, str] = {}

    def find(self, k: str) -> str:
        root = k
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[k] != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def union(self, a: str, b: str, why: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = min(ra, rb), max(ra, rb)
            self.parent[high] = low
            self.members[low] += self.members.pop(high)
            self.evidence.setdefault(b, why)

    def groups(self) -> dict[str, list[str]]:
        return {root: list(keys) for root, keys in self.members.items()}


def _slot(ref: RecordRef) -> str | None:
    """The one-per-person slot a writable record takes: one HubSpot contact, one live Salesforce record."""
    return ref.source if ref.writable else None


def _clashes(members: Iterable[RecordRef]) -> bool:
    seen: set[str] = set()
    for ref in members:
        slot = _slot(ref)
        if slot is None:
            continue
        if slot in seen:
            return True
        seen.add(slot)
    return False


def resolve(refs: Sequence[RecordRef], overrides: Sequence[Override] = ()) -> Identity:
    """Group records into persons; report what is ambiguous instead of guessing."""
    by_key = {r.key: r for r in refs}
    sets = _Sets(by_key)
    unlinked = {o.a for o in overrides if o.kind == "unlink"}
    for o in overrides:
        if o.kind == "link" and o.a in by_key and o.b in by_key:
            sets.union(o.a, o.b, OVERRIDE)
    conflicts: list[Conflict] = []
    auto = [r for r in refs if r.key not in unlinked and not r.archived]
    _link_explicit(auto, by_key, unlinked, sets, conflicts)
    _link_email(auto, by_key, sets, conflicts)
    persons = []
    for members in sets.groups().values():
        members.sort(key=_anchor_order(by_key))
        evidence = {k: sets.evidence.get(k, EXPLICIT) for k in members[1:]}
        persons.append(Person("p:" + members[0], tuple(members), evidence))
    persons.sort(key=lambda p: p.key)
    return Identity(persons, conflicts)


def _anchor_order(by_key: Mapping[str, RecordRef]):  # noqa: ANN202 - a sort key
    """The person is named after its live HubSpot contact, else its live Salesforce record, else any."""
    def key(k: str) -> tuple[int, str]:
        r = by_key[k]
        return (0 if r.writable and r.source == "hubspot" else 1 if r.writable else 2, k)
    return key


def _members(sets: _Sets, by_key: Mapping[str, RecordRef], roots: Iterable[str]) -> list[RecordRef]:
    return [by_key[k] for r in set(roots) for k in sets.members[r]]


def _link_explicit(refs: Sequence[RecordRef], by_key: Mapping[str, RecordRef], unlinked: set[str], sets: _Sets,
                   conflicts: list[Conflict]) -> None:
    for ref in refs:
        for target in ref.links:
            other = by_key.get(target)
            if other is None or other.key in unlinked or other.archived:
                continue
            roots = {sets.find(ref.key), sets.find(other.key)}
            if len(roots) > 1 and _clashes(_members(sets, by_key, roots)):
                conflicts.append(Conflict(tuple(sorted((ref.key, other.key))),
                                          f"{ref.key} names {other.key}, which is already one person with "
                                          "another record of the same CRM"))
                continue
            sets.union(ref.key, other.key, EXPLICIT)


def _link_email(refs: Sequence[RecordRef], by_key: Mapping[str, RecordRef], sets: _Sets,
                conflicts: list[Conflict]) -> None:
    groups: dict[str, list[RecordRef]] = {}
    for ref in refs:
        if ref.email:
            groups.setdefault(ref.email, []).append(ref)
    for email in sorted(groups):
        group = groups[email]
        if len(group) < 2:
            continue
        candidates, reason = _email_candidates(group)
        if reason:
            conflicts.append(Conflict(tuple(sorted(r.key for r in group)), reason, email))
            continue
        roots = {sets.find(r.key) for r in candidates}
        if len(roots) < 2:
            continue
        if _clashes(_members(sets, by_key, roots)):
            conflicts.append(Conflict(tuple(sorted(r.key for r in candidates)),
                                      "the email points two ways: cross-CRM ids already link these records "
                                      "to other records of the same CRM", email))
            continue
        first = candidates[0]
        for r in candidates[1:]:
            sets.union(first.key, r.key, EMAIL)


def _email_candidates(group: Sequence[RecordRef]) -> tuple[list[RecordRef], str | None]:
    """The records one address links, by Salesforce's order; or the reason it is ambiguous."""
    hubspot = [r for r in group if r.source == "hubspot" and r.writable]
    contacts = [r for r in group if r.source == "salesforce" and r.object_type == "Contact" and r.writable]
    leads = [r for r in group if r.source == "salesforce" and r.object_type == "Lead" and r.writable]
    others = [r for r in group if r.writable and r.source not in ("hubspot", "salesforce")]
    if len(hubspot) > 1:
        return [], f"{len(hubspot)} HubSpot contacts share this email"
    if len(contacts) > 1:
        return [], f"{len(contacts)} Salesforce Contacts share this email"
    if not contacts and len(leads) > 1:
        return [], f"{len(leads)} live Salesforce Leads share this email and no Contact does"
    salesforce = contacts or leads  # a Contact wins over Leads with its address: the person was converted
    by_source: dict[str, list[RecordRef]] = {}
    for r in others:
        by_source.setdefault(r.source, []).append(r)
    if any(len(v) > 1 for v in by_source.values()):
        return [], "several records of one source share this email"
    return sorted([*hubspot, *salesforce, *others], key=lambda r: r.key), None
