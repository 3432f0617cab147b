"""The CRM search endpoint's filter language (reference §2.5), evaluated over stored records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.hubspot.store import Record, to_millis

#: Limits since 2024-08-26 (reference §2.5).
MAX_GROUPS, MAX_PER_GROUP, MAX_FILTERS = 5, 10, 25
MAX_LIMIT, RESULT_CAP = 200, 10_000


class BadSearch(ValueError):
    """A search body HubSpot answers with 400 VALIDATION_ERROR."""


def _num_or_text(value: str | None, is_time: bool) -> Any:
    if is_time:
        return to_millis(value)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return value.lower()


def _compare(op: str, have: str | None, f: dict[str, Any], is_time: bool) -> bool:
    if op == "HAS_PROPERTY":
        return have not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return have in (None, "")
    if op in ("IN", "NOT_IN"):
        hit = (have or "").lower() in {str(v).lower() for v in f.get("values") or []}
        return hit if op == "IN" else not hit
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value", "")).lower().strip("*")
        hit = token in (have or "").lower()
        return hit if op == "CONTAINS_TOKEN" else not hit
    if have in (None, ""):
        return op == "NEQ"
    a = _num_or_text(have, is_time)
    b = _num_or_text(str(f.get("value")), is_time)
    if op == "BETWEEN":
        hi = _num_or_text(str(f.get("highValue")), is_time)
        return _safe(lambda: b <= a <= hi)
    checks: dict[str, Callable[[], bool]] = {
        "EQ": lambda: a == b, "NEQ": lambda: a != b, "LT": lambda: a < b, "LTE": lambda: a <= b,
        "GT": lambda: a > b, "GTE": lambda: a >= b,
    }
    if op not in checks:
        raise BadSearch(f"Invalid operator: {op}")
    return _safe(checks[op])


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except TypeError:  # text vs number: HubSpot matches nothing
        return False


def compile_filters(groups: list[dict[str, Any]], time_props: set[str]) -> Callable[[Record], bool]:
    """A predicate for `filterGroups` (OR of ANDs); raises BadSearch past HubSpot's limits."""
    total = sum(len(g.get("filters") or []) for g in groups)
    if len(groups) > MAX_GROUPS or total > MAX_FILTERS or any(len(g.get("filters") or []) > MAX_PER_GROUP
                                                               for g in groups):
        raise BadSearch(f"Too many filters: at most {MAX_GROUPS} filterGroups, {MAX_PER_GROUP} filters per "
                        f"group and {MAX_FILTERS} filters in total")
    compiled = [[(f["propertyName"], f.get("operator", "EQ"), f) for f in g.get("filters") or []] for g in groups]

    def match(rec: Record) -> bool:
        if not compiled:
            return True
        return any(all(_compare(op, _value(rec, p), f, p in time_props) for p, op, f in g) for g in compiled)

    return match


def _value(rec: Record, prop: str) -> str | None:
    return rec.id if prop in ("hs_object_id", "id") else rec.properties.get(prop)


def sort_key(sorts: list[Any], time_props: set[str]) -> tuple[Callable[[Record], Any], bool]:
    """Sort by the first sort spec (dict or "prop"/"-prop" string); default is by id ascending."""
    if not sorts:
        return (lambda r: int(r.id)), False
    spec = sorts[0]
    if isinstance(spec, str):
        prop, desc = spec.lstrip("-"), spec.startswith("-")
    else:
        prop, desc = spec.get("propertyName", "hs_object_id"), spec.get("direction") == "DESCENDING"
    is_time = prop in time_props

    def key(r: Record) -> Any:
        v = _num_or_text(_value(r, prop), is_time)
        missing = v is None
        return (missing, v if not missing and not isinstance(v, str) else 0, v if isinstance(v, str) else "",
                int(r.id))

    return key, desc


_BOUNDS = {"GTE": (True, False), "GT": (True, False), "LTE": (False, True), "LT": (False, True)}


def modified_range(groups: list[dict[str, Any]], sorts: list[Any], prop: str) -> tuple[float | None, float | None,
                                                                                       bool] | None:
    """(low, high, descending) when a search is only a range on `prop` sorted by `prop`, else None.

    That is the incremental-sync query (reference §2.6); answering it from an index keeps it O(log n + page).
    Strict bounds (GT/LT) are widened by one millisecond, the stored precision.
    """
    if len(groups) != 1 or not sorts:
        return None
    spec = sorts[0]
    sort_prop = spec.lstrip("-") if isinstance(spec, str) else spec.get("propertyName")
    if sort_prop != prop:
        return None
    desc = spec.startswith("-") if isinstance(spec, str) else spec.get("direction") == "DESCENDING"
    low: float | None = None
    high: float | None = None
    for f in groups[0].get("filters") or []:
        op = f.get("operator")
        if f.get("propertyName") != prop or op not in (*_BOUNDS, "BETWEEN"):
            return None
        value = to_millis(str(f.get("value")))
        if value is None:
            return None
        if op == "BETWEEN":
            high_value = to_millis(str(f.get("highValue")))
            if high_value is None:
                return None
            low, high = max(low or value, value), min(high if high is not None else high_value, high_value)
        elif _BOUNDS[op][0]:
            value += 1 if op == "GT" else 0
            low = value if low is None else max(low, value)
        else:
            value -= 1 if op == "LT" else 0
            high = value if high is None else min(high, value)
    return low, high, desc
