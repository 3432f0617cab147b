"""Salesforce record ids: 15-char case-sensitive ids plus the 3-char checksum suffix.

Real clients compare and store 18-char ids, so the emulator hands out ids that
pass the same checksum a real org's ids pass.
"""

from __future__ import annotations

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
    "LeadStatus": "01J",
    "EmailMessage": "02s",
}


def checksum(id15: str) -> str:
    """The 3-char suffix: one bit per upper-case letter in each 5-char chunk."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out.append(_SUFFIX[bits])
    return "".join(out)


def make_id(prefix: str, counter: int) -> str:
    """A deterministic 18-char id: prefix, a fixed pod marker, base62 counter, checksum."""
    digits = ""
    n = counter
    while True:
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
        if n == 0:
            break
    id15 = (prefix + "Sb0" + digits.rjust(9, "0"))[:15]
    return id15 + checksum(id15)


def prefix_object(record_id: str) -> str | None:
    """The sObject an id belongs to, by its key prefix."""
    head = record_id[:3]
    for name, prefix in PREFIXES.items():
        if prefix == head:
            return name
    return None


def looks_like_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isalnum()
