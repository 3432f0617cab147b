"""SOQL semantics over the store: validation against the schema, filtering, ordering, rendering.

A parsed `Query` is bound once into a `Plan` (getters, a predicate, sort keys)
so evaluating a row costs a few closure calls. The incremental-pull shape
`WHERE SystemModstamp >= X ... ORDER BY SystemModstamp, Id` is served from
the table's sorted stamp index without a sort.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sandbox.salesforce.ids import prefix_object
from sandbox.salesforce.schema import NUMERIC, FieldDef, SObjectDef
from sandbox.salesforce.soql import BoolOp, Compare, Cond, FieldRef, InList, Literal, Not, Query, SoqlError
from sandbox.salesforce.store import Row, Store

Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

_NO_COLUMN = ("No such column '{field}' on entity '{obj}'. If you are attempting to use a custom field, be sure to "
              "append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
              "the appropriate names.")
_NO_RELATION = ("Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                "your WSDL or the describe call for the appropriate names.")
_NO_TYPE = ("sObject type '{obj}' is not supported. If you are attempting to use a custom object, be sure to append "
            "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate "
            "names.")
_SOQL_TYPE = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "double": "double", "int": "double",
              "currency": "double", "percent": "double"}
_EXACT = frozenset({"id", "reference"})  # ids compare and sort case-sensitively; other text does not
_LITERAL_OK = {"datetime": {"datetime"}, "date": {"date"}, "boolean": {"boolean"}}


@dataclass(frozen=True, slots=True)
class Column:
    """One selected path, resolved: the objects along it and the leaf field."""

    ref: FieldRef
    hops: tuple[FieldDef, ...]  # reference fields walked, in order
    leaf: FieldDef
    get: Getter
    key: Getter  # the value as SOQL compares and sorts it: text case-insensitively, ids exactly

    def literal(self, value: Any) -> Any:
        return value if self.exact else fold(value)

    @property
    def exact(self) -> bool:
        return self.leaf.type in _EXACT


@dataclass(frozen=True)
class Plan:
    query: Query
    sobject: SObjectDef
    columns: tuple[Column, ...]
    predicate: Predicate | None
    stamp_floor: tuple[datetime, bool] | None  # (value, inclusive) when the index can skip older rows
    presorted: bool  # ORDER BY SystemModstamp[, Id]: the index order is the answer
    sort_keys: tuple[tuple[Getter, bool, bool], ...]  # getter, descending, nulls_last


def fold(value: Any) -> Any:
    """SOQL compares text case-insensitively."""
    return value.casefold() if isinstance(value, str) else value


class Binder:
    """Resolves names in a parsed query against the schema and store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def bind(self, query: Query) -> Plan:
        table = self.store.table(query.sobject)
        if table is None:
            raise SoqlError("INVALID_TYPE", _NO_TYPE.format(obj=query.sobject), query.sobject_pos)
        obj = table.sobject
        columns = tuple(self.column(obj, ref) for ref in query.fields)
        predicate = self.condition(obj, query.where) if query.where is not None else None
        sort_keys = tuple((self.column(obj, k.field).key, k.descending, k.nulls_last) for k in query.order)
        floor = _stamp_floor(query.where)
        order = [(k.field.text.casefold(), k.descending) for k in query.order]
        presorted = order in ([("systemmodstamp", False)],
                                                    [("systemmodstamp", False), ("id", False)])
        return Plan(query, obj, columns, predicate, floor, presorted, sort_keys)

    def column(self, obj: SObjectDef, ref: FieldRef) -> Column:
        hops: list[FieldDef] = []
        current: list[SObjectDef] = [obj]
        for rel in ref.path[:-1]:
            link = next((o.relationship(rel) for o in current if o.relationship(rel)), None)
            if link is None:
                raise SoqlError("INVALID_FIELD", _NO_RELATION.format(rel=rel), ref.pos)
            hops.append(link)
            current = [self.store.schema[t] for t in link.reference_to]
        name = ref.path[-1]
        leaf = next((o.field(name) for o in current if o.field(name)), None)
        if leaf is None:
            shown = ref.text if hops else name
            raise SoqlError("INVALID_FIELD", _NO_COLUMN.format(field=shown, obj=current[0].name), ref.pos)
        get = self._getter(tuple(hops), leaf.name)
        key = get if leaf.type in _EXACT else (lambda row: fold(get(row)))
        return Column(ref, tuple(hops), leaf, get, key)

    def _getter(self, hops: tuple[FieldDef, ...], leaf: str) -> Getter:
        if not hops:
            return lambda row: row.get(leaf)
        get = self.store.get

        def walk(row: Row) -> Any:
            current: Row | None = row
            for hop in hops:
                ref_id = current.get(hop.name) if current else None
                current = get(ref_id) if ref_id else None
            return current.get(leaf) if current else None

        return walk

    def condition(self, obj: SObjectDef, cond: Cond) -> Predicate:
        if isinstance(cond, BoolOp):
            parts = [self.condition(obj, c) for c in cond.items]
            if cond.op == "AND":
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
        if isinstance(cond, Not):
            inner = self.condition(obj, cond.item)
            return lambda row: not inner(row)
        col = self.column(obj, cond.field)
        if isinstance(cond, InList):
            for lit in cond.values:
                _check_literal(col, lit)
            members = {col.literal(v.value) for v in cond.values}
            key = col.key
            if cond.negate:
                return lambda row: key(row) not in members
            return lambda row: key(row) in members
        _check_literal(col, cond.value)
        if cond.op == "LIKE":
            rx = _like_regex(cond.value.value)
            get = col.get
            return lambda row: isinstance(v := get(row), str) and rx.fullmatch(v) is not None
        return _compare(col.key, cond.op, col.literal(cond.value.value))


def _check_literal(col: Column, lit: Literal) -> None:
    """Reject a literal of the wrong type the way Salesforce does (INVALID_FIELD, value quoted or not)."""
    ftype = col.leaf.type
    if lit.kind == "null":
        return
    allowed = _LITERAL_OK.get(ftype, {"number"} if ftype in NUMERIC else {"string"})
    if lit.kind in allowed:
        return
    kind = _SOQL_TYPE.get(ftype, "string")
    quoted = "should be enclosed in quotes" if kind == "string" else "should not be enclosed in quotes"
    raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{col.ref.text}' must be of type "
                                     f"{kind} and {quoted}", lit.pos)


def _compare(get: Getter, op: str, target: Any) -> Predicate:
    """`get` and `target` are already in comparison form (see `Column.key`)."""
    if target is None:
        if op == "=":
            return lambda row: get(row) is None
        if op == "!=":
            return lambda row: get(row) is not None
        return lambda row: False
    if op == "=":
        return lambda row: get(row) == target
    if op == "!=":
        return lambda row: get(row) != target
    cmp: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    }
    test = cmp[op]
    return lambda row: (v := get(row)) is not None and test(v, target)


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _stamp_floor(where: Cond | None) -> tuple[datetime, bool] | None:
    """A `SystemModstamp >= / > X` conjunct at the top level lets the index skip older rows."""
    items = where.items if isinstance(where, BoolOp) and where.op == "AND" else (where,) if where else ()
    for c in items:
        if (isinstance(c, Compare) and c.field.text.casefold() == "systemmodstamp" and c.op in (">=", ">")
                and isinstance(c.value.value, datetime)):
            return c.value.value, c.op == ">="
    return None


def execute(plan: Plan, store: Store, include_deleted: bool) -> list[str]:
    """The ids the query selects, in order (LIMIT / OFFSET applied)."""
    table = store.tables[plan.sobject.name]
    live_only = not include_deleted
    if plan.stamp_floor is not None:
        ids = table.since(*plan.stamp_floor, live_only=live_only)
    elif plan.presorted:
        ids = table.since(None, True, live_only)  # the whole index, already in (SystemModstamp, Id) order
    else:
        ids = [i for i in table.rows if i not in table.deleted] if live_only else list(table.rows)
    rows = table.rows
    pred = plan.predicate
    out = ids if pred is None else [i for i in ids if pred(rows[i])]
    if plan.sort_keys and not plan.presorted:
        for get, desc, nulls_last in reversed(plan.sort_keys):
            out.sort(key=lambda i, g=get, nl=nulls_last, d=desc: _sort_key(g(rows[i]), nl != d), reverse=desc)
    q = plan.query
    start = q.offset or 0
    return out[start : start + q.limit] if q.limit is not None else out[start:]


def _sort_key(value: Any, nulls_high: bool) -> tuple[int, Any]:
    if value is None:
        return (1 if nulls_high else -1, "")
    return (0, value)


def render_value(value: Any) -> Any:
    """Wire format: `2026-05-01T07:25:37.000+0000` datetimes, ISO dates, JSON numbers."""
    if isinstance(value, datetime):
        return _stamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


#: Rendered datetimes. Stamps have one-second precision, so many rows share one, and rendering one (about
#: 1 µs on a large org, where the datetime is rarely in the CPU cache) costs more than the rest of its row.
#: Bounded: once full, new values are rendered each time and the cached ones stay (no thrashing).
_STAMPS: dict[datetime, str] = {}
_STAMP_CACHE_MAX = 1_000_000  # ~100 MB at most


def _stamp_text(value: datetime) -> str:
    text = _STAMPS.get(value)
    if text is None:
        if value.year >= 1000:  # isoformat is 3x faster than strftime; same text for 4-digit years
            text = value.isoformat()[:19] + ".000+0000"
        else:
            text = value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        if len(_STAMPS) < _STAMP_CACHE_MAX:
            _STAMPS[value] = text
    return text


def remember_stamps(values: Iterable[datetime]) -> None:
    """Render these datetimes ahead (seeding: the leads' and contacts' SystemModstamps, which incremental
    pulls page through), so the first pass over a large org reads cached text."""
    for value in values:
        _stamp_text(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


def render_page(plan: Plan, store: Store, rows: list[Row], version: str) -> list[dict[str, Any]]:
    """Records as the query endpoint returns them, relationship fields nested with their own attributes.

    Query paging is the sandbox's hottest path (the scale goal is 1,000 pages/s), so the per-page work is
    hoisted out of the row loop and plain values go out without a call."""
    sobject = plan.sobject.name
    prefix = f"/services/data/v{version}/sobjects/{sobject}/"
    out = []
    if any(c.hops for c in plan.columns):
        for row in rows:
            record: dict[str, Any] = {"attributes": {"type": sobject, "url": prefix + row["Id"]}}
            for col in plan.columns:  # in SELECT order, as the real API sends them
                if col.hops:
                    _render_path(record, row, col, store, version)
                else:
                    record[col.leaf.name] = render_value(row.get(col.leaf.name))
            out.append(record)
        return out
    names = [c.leaf.name for c in plan.columns]
    stamp = _stamp_text
    for row in rows:
        record = {"attributes": {"type": sobject, "url": prefix + row["Id"]}}
        for name in names:
            value = row.get(name)
            t = type(value)
            record[name] = value if t in _PLAIN else stamp(value) if t is datetime else render_value(value)
        out.append(record)
    return out


def _render_path(out: dict[str, Any], row: Row, col: Column, store: Store, version: str) -> None:
    holder, current = out, row
    for hop in col.hops:
        name = hop.relationship or hop.name
        ref_id = current.get(hop.name) if current is not None else None
        parent = store.get(ref_id) if ref_id else None
        if parent is None:
            holder.setdefault(name, None)
            return
        nested = holder.get(name)
        if nested is None:
            attrs = attributes(prefix_object(ref_id) or hop.reference_to[0], ref_id, version)
            if len(hop.reference_to) > 1:
                attrs["type"] = "Name"  # polymorphic parents come back as the Name pseudo-type
            nested = {"attributes": attrs}
            holder[name] = nested
        holder, current = nested, parent
    holder[col.leaf.name] = render_value(current.get(col.leaf.name))
