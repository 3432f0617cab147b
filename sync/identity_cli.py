"""`leadsync identity …`: who is whom across the CRMs, and a person's decisions about it.

Manual decisions are stored in the state and stand above every automatic link: `link A B` joins two records
into one person, `unlink A` makes a record a person of its own. Records are named `source:id` (a bare id or
an email is looked up). Nothing here calls a CRM; the next sync writes what the decision changes.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mapping.identity import normalise_email
from sync import cli_context as ctx
from sync.outcome import emit
from sync.persons import gather, whole_identity
from sync.safe_text import crm
from sync.state import State

identity_app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
out = Console()
err = Console(stderr=True)
JSON = typer.Option(False, "--json", help="Print one machine-readable JSON object.")


def _emit(obj: Any) -> None:
    emit(obj)


def _state() -> State:
    return ctx.state()


def _record_keys(state: State, name: str) -> list[str]:
    """`source:id`, a bare id (any source), or an email: the stored records it names."""
    if ":" in name and state.records([name]):
        return [name]
    email = normalise_email(name)
    if email:
        return sorted(c.key for c in state.contact_by_email(email))
    return sorted(f"{src}:{name}" for src in ("hubspot", "salesforce", "csv") if state.records([f"{src}:{name}"]))


def _one(state: State, name: str) -> str:
    keys = _record_keys(state, name)
    if len(keys) != 1:
        found = ", ".join(keys) if keys else "no stored record"
        err.print(f"[red]{crm(name)!s} must name exactly one record (source:id); found: {crm(found)}[/]")
        raise typer.Exit(1)
    return keys[0]


def _mark(state: State, keys: list[str]) -> None:
    """The records a decision touches (and their persons) are decided again by the next sync."""
    with state.tx():
        for k in keys:
            src, _, rid = k.partition(":")
            state.mark_dirty(src, [rid])


@identity_app.command("link")
def link(a: str, b: str, as_json: bool = JSON) -> None:
    """Make records A and B one person, whatever the automatic evidence says."""
    state = _state()
    ka, kb = _one(state, a), _one(state, b)
    with state.tx():
        state.add_override("link", ka, kb)
    _mark(state, [ka, kb])
    result = {"linked": [ka, kb]}
    _emit(result) if as_json else out.print(f"linked {ka} and {kb}: one person from the next sync on")


@identity_app.command("unlink")
def unlink(a: str, as_json: bool = JSON) -> None:
    """Make record A a person of its own: no automatic link joins it again until you `link` it."""
    state = _state()
    ka = _one(state, a)
    before = gather(state, list(state.records([ka]).values())).person_of().get(ka)
    with state.tx():
        state.add_override("unlink", ka)
    _mark(state, list(before.records) if before else [ka])
    result = {"unlinked": ka, "was_with": [k for k in (before.records if before else ()) if k != ka]}
    _emit(result) if as_json else out.print(f"unlinked {ka}; it was one person with: "
                                            f"{', '.join(result['was_with']) or 'nobody'}")


@identity_app.command("show")
def show(name: str, as_json: bool = JSON) -> None:
    """The person behind an email or record: their records, how each was linked, and any conflict."""
    state = _state()
    keys = _record_keys(state, name)
    if not keys:
        if as_json:
            emit({"name": name, "error": f"no stored record for {name!r}; run a backfill first"}, status="error")
        err.print(f"[red]No stored record for {crm(name)}[/] — run a backfill first.")
        raise typer.Exit(1)
    batch = gather(state, list(state.records(keys).values()))
    persons = {p.key: p for k in keys if (p := batch.person_of().get(k))}
    conflicts = [c for c in batch.identity.conflicts if set(c.records) & set(batch.records)]
    overrides = state.overrides(batch.records)
    result = {
        "persons": [{"key": p.key, "records": [_describe(batch.records[k]) | {"evidence": p.evidence.get(k, "anchor")}
                                               for k in p.records]} for p in persons.values()],
        "conflicts": [{"records": list(c.records), "reason": c.reason, "email": c.email} for c in conflicts],
        "overrides": [{"kind": k, "a": a, "b": b} for k, a, b in overrides],
    }
    if as_json:
        _emit(result)
        return
    for p in result["persons"]:
        table = Table("record", "type", "email", "name", "stage", "linked by", title=f"person {p['key']}")
        for r in p["records"]:
            table.add_row(r["key"], r["object_type"], crm(r["email"] or ""), crm(r["name"]),
                          r["stage"] or "", r["evidence"])
        out.print(table)
    for c in result["conflicts"]:
        out.print(f"[yellow]conflict[/] {', '.join(c['records'])}: {crm(c['reason'])}")


def _describe(c: Any) -> dict[str, Any]:
    return {"key": c.key, "object_type": c.object_type, "email": c.email, "name": c.name,
            "stage": c.lifecycle_stage.value if c.lifecycle_stage else None, "archived": c.archived,
            "converted": c.read_only}


@identity_app.command("conflicts")
def conflicts(as_json: bool = JSON, limit: int = typer.Option(50, "--limit")) -> None:
    """Records identity would not link on its own (two live Leads with one email, …): a person decides."""
    state = _state()
    identity, _ = whole_identity(state)
    rows = [{"records": list(c.records), "reason": c.reason, "email": c.email} for c in identity.conflicts]
    if as_json:
        _emit({"conflicts": rows, "persons": len(identity.persons)})
        return
    if not rows:
        out.print(f"No identity conflicts among {len(identity.persons):,} persons.")
        return
    table = Table("email", "records", "why", title=f"{len(rows)} identity conflicts")
    for r in rows[:limit]:
        table.add_row(crm(r["email"] or ""), "\n".join(r["records"]), crm(r["reason"]))
    out.print(table)
    out.print("Decide with `leadsync identity link A B` or `leadsync identity unlink A`.")
