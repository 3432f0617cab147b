"""Model regexes, compiled with RE2: matching time is linear in the text, whatever the pattern.

A marketer's `(a+)+$` on Python's backtracking engine hangs scoring on one 40-character
title; RE2 cannot blow up, and what it cannot take (backreferences, lookaround, counted
repetition above 1000) is refused when the model loads, so the rule is named then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2

#: RE2's own ceiling for `{n}`; it reads a larger count as literal text, so it is refused here first.
MAX_REPEAT = 1000
_COUNTED = re.compile(r"(?<!\\)\{([0-9]+)(?:,([0-9]*))?\}")

Search = Callable[[str], Any]


class PatternError(ValueError):
    """A pattern RE2 cannot take; the message says why, for the rule's error."""


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the rule's ModelError says it; nothing goes to stderr
    return options


def _check_counts(pattern: str) -> None:
    for match in _COUNTED.finditer(pattern):
        for count in match.groups():
            if count and (len(count) > 4 or int(count) > MAX_REPEAT):
                raise PatternError(f"repetition {match.group(0)[:20]} is above {MAX_REPEAT}")


def compile_search(pattern: str) -> Search:
    """A case-insensitive, unanchored search for `pattern`; raises PatternError when RE2 refuses it."""
    _check_counts(pattern)
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(str(detail)) from None
    except (UnicodeError, TypeError, ValueError, OverflowError) as exc:
        raise PatternError(f"cannot be compiled ({type(exc).__name__})") from None
    search = compiled.search

    def find(text: str) -> Any:
        try:
            return search(text)
        except UnicodeEncodeError:  # a lone surrogate from CRM JSON: RE2 matches UTF-8 only
            return search(text.encode("utf-8", "replace").decode("utf-8"))

    return find
