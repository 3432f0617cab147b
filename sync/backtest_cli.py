"""`leadsync backtest`: what a model would have done on the team's own history, from the state store.

No CRM calls: the persons, their pooled engagement and their real outcomes are all in the state after a
backfill. The pure replay lives in `scoring/backtest.py`; this module reads the state, parses the
options and lays out the figures (rich tables, `--json`, a self-contained `--html` page).
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from scoring import ModelError, ScoringModel, default_model, load_model
from scoring.backtest import Backtest, Subject, backtest, compare
from sync import cli_context as ctx
from sync.history_subjects import Outcomes, subjects
from sync.safe_text import crm, plain
from sync.settings import Settings
from sync.state import State

_out = Console()
_err = Console(stderr=True)
_SPAN = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")
_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
TOP_MOVES = 25

#: Real outcomes per record; set by the CLI, which knows where the state's history lives.
OutcomeReader = Callable[[State], Outcomes]


def parse_since(text: str, today: date) -> date:
    """`26w`, `90d`, `6m`, `1y`, or an ISO date."""
    found = _SPAN.match(text)
    if found:
        return today - timedelta(days=int(found.group(1)) * _DAYS[found.group(2)])
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"--since {text!r}: expected a span like 26w, 90d, 6m, 1y or a date "
                                 "like 2026-01-31") from None


def _model(path: Path | None, settings: Settings) -> ScoringModel:
    if path is not None:
        return load_model(path)
    return load_model(settings.model_path) if settings.model_path else default_model()


def _emit(obj: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _verdicts_json(bt: Backtest, subject_of: Mapping[str, Subject]) -> list[dict[str, Any]]:
    return [{"person": v.key, "email": subject_of[v.key].contact.email, "mql_on": v.mql_on, "sql_on": v.sql_on,
             "outcome_on": v.outcome_on, "owner": v.owner, "why": list(v.reasons)}
            for v in bt.verdicts if v.mql_on or v.sql_on]


def _figure_rows(figures: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    def cell(v: Any, share: bool = False) -> str:
        return "–" if v is None else f"{v:.1%}" if share else f"{v:,}" if isinstance(v, int) else str(v)

    labels = (("persons", "persons in the window", False), ("would_mql", "would have become MQL", False),
              ("would_sql", "would have become SQL (hand-off)", False),
              ("sql_then_opportunity", "… then reached opportunity or customer", False),
              ("sql_then_customer", "… then became a customer", False),
              ("median_days_sql_to_outcome", "median days from hand-off to outcome", False),
              ("outcomes_in_window", "real outcomes in the window", False),
              ("outcomes_caught", "… handed off before the outcome", False),
              ("precision", "precision of SQL", True), ("recall", "recall of SQL", True))
    return [(label, [cell(f.get(key), share) for f in figures.values()]) for key, label, share in labels]


def _owner_rows(figures: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    weekly = figures["sqls_per_week_per_owner"]
    totals: dict[str, int] = {}
    for counts in weekly.values():
        for owner, n in counts.items():
            totals[owner] = totals.get(owner, 0) + n
    weeks = max(1, len(weekly))
    return sorted(((o, n, n / weeks) for o, n in totals.items()), key=lambda r: (-r[1], r[0]))


def _print(result: Mapping[str, Any]) -> None:
    names = list(result["figures"])
    table = Table(title=f"Backtest {result['since']} → {result['until']} (point in time, daily)",
                  title_justify="left", header_style="bold")
    table.add_column("")
    for name in names:
        table.add_column(plain(result["models"][name]), justify="right")
    for label, cells in _figure_rows(result["figures"]):
        table.add_row(label, *cells)
    _out.print(table)
    owners = Table(title="Sales load: hand-offs per owner", title_justify="left", header_style="bold")
    for col in ("owner", "hand-offs", "per week"):
        owners.add_column(col, justify="left" if col == "owner" else "right")
    for owner, n, per_week in _owner_rows(result["figures"][names[-1]])[:15]:
        owners.add_row(plain(owner), f"{n:,}", f"{per_week:.1f}")
    _out.print(owners)
    moves = result.get("moves")
    if moves is not None:
        _out.print("Hand-offs that move: " + ", ".join(f"{k} {v:,}" for k, v in sorted(moves["counts"].items()))
                   or "none")
        t = Table("person", "email", "base", "new", "move", title_justify="left", header_style="bold")
        for m in moves["persons"][:TOP_MOVES]:
            t.add_row(plain(m["person"]), plain(m["email"] or ""), str(m["before"] or "–"), str(m["after"] or "–"),
                      m["kind"])
        _out.print(t)
        if len(moves["persons"]) > TOP_MOVES:
            _out.print(f"… {len(moves['persons']) - TOP_MOVES:,} more (all of them in --json)")
    _out.print(f"[dim]{crm(result['note'])}[/]")


def _html(result: Mapping[str, Any]) -> str:
    """A plain page: every CRM value escaped, no script."""
    esc = html.escape
    names = list(result["figures"])
    head = "".join(f"<th>{esc(str(result['models'][n]))}</th>" for n in names)
    rows = "".join(f"<tr><td>{esc(label)}</td>{''.join(f'<td>{esc(c)}</td>' for c in cells)}</tr>"
                   for label, cells in _figure_rows(result["figures"]))
    owners = "".join(f"<tr><td>{esc(o)}</td><td>{n:,}</td><td>{w:.1f}</td></tr>"
                     for o, n, w in _owner_rows(result["figures"][names[-1]]))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>leadsync backtest</title>"
             "<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
             "</style></head><body>",
             f"<h1>Backtest {esc(str(result['since']))} → {esc(str(result['until']))}</h1>",
             f"<table><tr><th></th>{head}</tr>{rows}</table>",
             f"<h2>Hand-offs per owner</h2><table><tr><th>owner</th><th>hand-offs</th><th>per week</th></tr>"
             f"{owners}</table>"]
    moves = result.get("moves")
    if moves is not None:
        body = "".join(f"<tr><td>{esc(m['person'])}</td><td>{esc(m['email'] or '')}</td>"
                       f"<td>{esc(str(m['before'] or '–'))}</td><td>{esc(str(m['after'] or '–'))}</td>"
                       f"<td>{esc(m['kind'])}</td></tr>" for m in moves["persons"])
        parts.append(f"<h2>Hand-offs that move</h2><table><tr><th>person</th><th>email</th><th>base</th>"
                     f"<th>new</th><th>move</th></tr>{body}</table>")
    parts.append(f"<p>{esc(result['note'])}</p></body></html>")
    return "".join(parts)


_NOTE = ("Point in time: each person is scored at the end of every day something happened to them, with only "
         "the engagement known by then, and not after their first real opportunity or customer date. Fit fields "
         "are today's values (the CRMs keep no history of them).")


def run_backtest(state: State, outcomes: Outcomes, model: ScoringModel, other: ScoringModel | None,
                 since: date, until: date, rules: Mapping[str, str]) -> dict[str, Any]:
    people = subjects(state, outcomes, rules)
    subject_of = {s.key: s for s in people}
    base = backtest(model, people, since, until)
    result: dict[str, Any] = {"status": "ok", "since": since, "until": until, "persons": len(people),
                              "models": {"base": model.label}, "figures": {"base": base.figures},
                              "verdicts": _verdicts_json(base, subject_of), "note": _NOTE}
    if other is not None:
        theirs = backtest(other, people, since, until)
        diff = compare(base, theirs)
        result["models"]["other"] = other.label
        result["figures"]["other"] = theirs.figures
        result["moves"] = {"counts": dict(diff["moves"]), "persons": [
            {"person": m.key, "email": subject_of[m.key].contact.email, "kind": m.kind, "before": m.before,
             "after": m.after, "days": m.days} for m in diff["persons"]]}
    return result


def register(app: typer.Typer, read_outcomes: OutcomeReader) -> None:
    @app.command("backtest")
    def backtest_cmd(
        model_path: Path | None = typer.Option(None, "--model", exists=True, dir_okay=False,
                                               help="Model TOML to replay (default: the configured one)."),
        compare_path: Path | None = typer.Option(None, "--compare", exists=True, dir_okay=False,
                                                 help="A second model, side by side, with the hand-offs that move."),
        since: str = typer.Option("26w", "--since", help="Start of the window: 26w, 90d, 6m, 1y or a date."),
        html_path: Path | None = typer.Option(None, "--html", dir_okay=False, help="Also write an HTML page."),
        as_json: bool = typer.Option(False, "--json", help="Print one machine-readable JSON object."),
    ) -> None:
        """Replay a model over stored history: when each person would have become MQL and SQL, and how
        those hand-offs turned out (precision and recall against real opportunities, load per owner)."""
        settings = ctx.settings()
        today = datetime.now(timezone.utc).date()
        try:
            model = _model(model_path, settings)
            other = load_model(compare_path) if compare_path else None
        except ModelError as exc:
            if as_json:
                _emit({"status": "error", "error": str(exc)})
            else:
                _err.print(crm(exc, lines=True), style="red")
            raise typer.Exit(2) from None
        state = ctx.state(settings)
        result = run_backtest(state, read_outcomes(state), model, other, parse_since(since, today), today,
                              settings.person_policy().rules)
        if not result["persons"]:
            result["status"] = "empty"
        if html_path:
            html_path.write_text(_html(result), encoding="utf-8")
            result["html"] = str(html_path)
        if as_json:
            _emit(result)
        else:
            _print(result)
            if html_path:
                _out.print(f"HTML: {html_path}")
        if result["status"] == "empty":
            raise typer.Exit(1)
