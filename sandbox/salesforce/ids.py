"""Salesforce record ids: 15-char case-sensitive ids plus the 3-char checksum suffix.

Real clients compare and store 18-char ids, so the emulator hands out ids that
pass the same checksum a real org's ids pass.
"""

from __future__ import annotations

import functools
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX = string.ascii_uppercase + "012345"

#: Key prefixes of the objects the emulator knows.
PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Group": "00G",
    "Campaign": "701",
    "CampaignMember": "00v",
    "CampaignMemberStatus": "01Y",
    "LeadStatus": "01J",
    "EmailMessage": "02s",
    "Opportunity": "006",
    "LeadHistory": "017",
    "ContactHistory": "017",
}


#: Upper-case letters to "1", anything else to "0": a chunk's bits, read right to left (seeding makes
#: millions of ids, and this is five times faster than testing each character in Python).
_BITS = str.maketrans({c: "1" if c in string.ascii_uppercase else "0" for c in _BASE62})


def checksum(id15: str) -> str:
    """The 3-char suffix: one bit per upper-case letter in each 5-char chunk."""
    bits = id15.translate(_BITS)
    if not (id15.isascii() and id15.isalnum()):  # only base-62 characters map to bits; others count as 0
        bits = "".join(b if b in "01" else "0" for b in bits)
    return _SUFFIX[int(bits[4::-1], 2)] + _SUFFIX[int(bits[9:4:-1], 2)] + _SUFFIX[int(bits[14:9:-1], 2)]


_PAIRS = [a + b for a in _BASE62 for b in _BASE62]  # two base-62 digits at a time: seeding makes millions of ids


def make_id(prefix: str, counter: int) -> str:
    """A deterministic 18-char id: prefix, a fixed pod marker, base62 counter, checksum."""
    digits = ""
    n = counter
    while True:
        n, r = divmod(n, 3844)
        digits = _PAIRS[r] + digits
        if n == 0:
            break
    id15 = (prefix + "Sb0" + digits.lstrip("0").rjust(9, "0"))[:15]
    head, tail = id15[:10], id15[10:]
    return id15 + _head_checksum(head) + _SUFFIX[int(tail.translate(_BITS)[::-1], 2)]


def seeded_id(sobject: str, index: int, second: bool = False) -> str:
    """The id of seed person `index`'s Lead or Contact, a pure function of the index: counter 2·index + 1 for
    the person's own record (a converted person's Lead and Contact both), 2·index + 2 for its second Lead (a
    duplicate). Seeded ids sort in seed order; the tables' counters continue after the last one."""
    return make_id(PREFIXES[sobject], 2 * index + 1 + second)


def seeded_counter(count: int) -> int:
    """The Lead and Contact counters after seeding `count` people: records created later come after."""
    return 2 * count + 2


@functools.lru_cache(maxsize=256)
def _head_checksum(head: str) -> str:
    """The first two suffix characters, which depend on the first ten id characters only (these change once
    per 62**5 ids of a prefix)."""
    return checksum(head + "00000")[:2]


def prefix_object(record_id: str) -> str | None:
    """The sObject an id belongs to, by its key prefix."""
    head = record_id[:3]
    for name, prefix in PREFIXES.items():
        if prefix == head:
            return name
    return None


def looks_like_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isalnum()
