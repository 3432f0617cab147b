"""CRM text on the terminal is data: never rich markup, never escape sequences.

A HubSpot name such as `Ann [/x]` is a rich closing tag (MarkupError, crash), an
email starting `[/i]` likewise; raw ESC/CSI bytes and OSC-8 hyperlinks in a CRM
field would drive the user's terminal. Every CRM string printed through rich goes
through `crm()` (inside markup) or `plain()` (where markup is off, or as `Text`).
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

#: C0 and C1 controls (ESC, CSI, BEL, NUL …), DEL, and bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\t\n\r]")


def plain(value: Any, lines: bool = False) -> str:
    """`value` as text without control characters; line breaks become spaces unless `lines`."""
    text = "" if value is None else str(value)
    if not lines:
        text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def crm(value: Any, lines: bool = False) -> str:
    """`plain(value)` with rich markup escaped, for use inside a markup string or a table cell."""
    return escape(plain(value, lines))
