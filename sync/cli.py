"""The `leadsync` command line. Every command has `--json`: one object on stdout."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.base import Connector, ConnectorError
from scoring import ModelError, ScoringModel, default_model, load_model
from scoring.calibrate_history import HistoryCalibration, HistorySettings, calibrate_history
from scoring.cli import register as register_scoring
from sync import adopt, logs, outcome, runner
from sync import cli_context as ctx
from sync.backtest_cli import parse_since
from sync.backtest_cli import register as register_backtest
from sync.engine import RunSummary, mapping_for, scoring_time
from sync.history_subjects import outcomes_from_state, subjects
from sync.identity_cli import identity_app
from sync.interval import IntervalError, parse_interval
from sync.lock import LockBusy, writer_lock
from sync.nurture import as_json as nurture_json
from sync.preview import build_preview
from sync.preview_render import print_preview
from sync.report import build_report
from sync.report_render import render_html, render_terminal
from sync.safe_text import crm
from sync.schedule import ModelWatch, daily_rescore, note_rescore
from sync.settings import Settings, SettingsError
from sync.state import State
from sync.status_cli import status
from sync.tenants import DEFAULT
from sync.undo import undo_run


class _App(ctx.TenantGroup):
    """A bad setting, config or tenants file or scoring model is one clear message and exit code 2, not a
    traceback (the message names the file and the rule, tenant or setting) — in-process callers too."""

    def invoke(self, click_ctx: Any) -> Any:
        try:
            return super().invoke(click_ctx)
        except (SettingsError, ModelError) as exc:
            err.print(f"[red]{crm(exc, lines=True)}[/]")
            raise typer.Exit(outcome.USAGE) from None


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, cls=_App)
sandbox_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local HubSpot and Salesforce emulators.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(identity_app, name="identity")
out = Console()
err = Console(stderr=True)

JSON = typer.Option(False, "--json", help="Print one machine-readable JSON object.")
SOURCE = typer.Option(None, "--source", help="hubspot or salesforce; default: every configured CRM.")
YES_HELP = ("Apply a model change or rescore even when it moves more than safety.max_stage_moves_share of the "
            "persons at once (preview it first with `leadsync plan --model M`).")
NEW_STATE = typer.Option(False, "--new-state", help=(
    "Start this state afresh on a CRM that already carries leadsync's values (another state owns it): "
    "without it the first run on a new state refuses there, writing nothing."))
SUM_KEYS = ("contacts_pulled", "engagements_pulled", "contacts_scored", "fields_updated", "records_updated",
            "tasks_created", "records_created", "nurture_added", "nurture_removed", "failed", "skipped", "issues",
            "api_calls")


def _emit(obj: Any, status: str | None = None) -> None:
    outcome.emit(obj, status)


_model = runner.model_of


@contextmanager
def _connector_setup(name: str | None = None) -> Iterator[None]:
    """A connector that cannot start (an unknown source, a settings value it cannot use) is one line, exit 2."""
    try:
        yield
    except runner.UnknownSource as exc:
        raise typer.BadParameter(str(exc)) from exc
    except ConnectorError as exc:
        err.print(f"[red]{f'{name}: ' if name else ''}{crm(exc)}[/]")
        raise typer.Exit(2) from exc


def make_connector(name: str, settings: Settings) -> Connector:
    with _connector_setup(name):
        return runner.make_connector(name, settings)


def _sources(settings: Settings, source: str | None) -> list[str]:
    if source:
        return [source]
    found = settings.configured_sources()
    if not found:
        err.print("[red]No CRM configured.[/] Set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the LEADSYNC_SALESFORCE__* "
                  "settings (see README), or try `leadsync demo`.")
        raise typer.Exit(2)
    return found


class _Progress:
    """Rich progress on stderr for humans; silent with --json."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and err.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed:,}"), TimeElapsedColumn(), console=err, transient=True)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def __call__(self, stage: str, n: int) -> None:
        if not self.enabled:
            return
        if stage not in self.tasks:
            label = {"pull": "pulling records", "score": "scoring and writing"}.get(stage, stage)
            self.tasks[stage] = self.progress.add_task(label, total=None)
        self.progress.advance(self.tasks[stage], n)


STOP = threading.Event()  # set by SIGTERM or Ctrl-C: finish the batch in hand, then end the run cleanly
STOPPABLE = threading.Event()  # a run or a sync loop is under way: Ctrl-C stops it cleanly instead of aborting
IN_RUN = threading.Event()  # a run is under way (not only a loop waiting for its next cycle)


def _on_sigint(*_: Any) -> None:
    """Ctrl-C during a run takes SIGTERM's path (the run ends `stopped`, resumable); a second one, or one
    outside a run or loop, interrupts at once."""
    if STOPPABLE.is_set() and not STOP.is_set():
        STOP.set()
        err.print("[yellow]Stopping after the batch in hand[/] (the run ends `stopped`, the next run continues; "
                  "Ctrl-C again to abort at once)" if IN_RUN.is_set() else "[yellow]Stopping the sync loop[/]")
        return
    if STOP.is_set() and not IN_RUN.is_set():
        return  # stopped already: the command is only finishing its output
    if IN_RUN.is_set():
        err.print("[red]Aborted at once[/]: the run stays `running` until the next run marks it `killed` "
                  "(its unconfirmed writes are checked then)")
    raise KeyboardInterrupt  # typer ends the command with exit 130


def run_sources(settings: Settings, state: State, sources: list[str], kind: str, model: ScoringModel,
                progress: Any = None, resume: bool = False, since: datetime | None = None,
                new_state: bool = False, *, rescore: bool = False, yes: bool = False
                ) -> list[tuple[RunSummary, Any]]:
    """`runner.run_sources` in the terminal: a CRM another run holds is said on stderr (exit 3 at the end),
    Ctrl-C stops the run cleanly, a connector that cannot start is one line and exit 2."""
    outer = STOPPABLE.is_set()  # inside a `sync --every` loop, which stays stoppable between runs

    def started() -> None:
        STOPPABLE.set()
        IN_RUN.set()

    try:
        with _connector_setup():
            ran = runner.run_sources(settings, state, sources, kind, model, progress, resume, since, new_state,
                                     rescore=rescore, yes=yes, stop=STOP, on_start=started,
                                     on_busy=lambda exc: err.print(f"[red]{crm(str(exc))}[/]"))
    finally:
        IN_RUN.clear()
        if not outer:
            STOPPABLE.clear()
    BUSY.extend(ran.busy)
    return ran.results


BUSY: list[str] = []  # sources this process found locked by another run (exit 3)


def run_source(settings: Settings, state: State, source: str, kind: str, model: ScoringModel,
               progress: Any = None, resume: bool = False, since: datetime | None = None) -> tuple[RunSummary, Any]:
    """One CRM on its own (its people's records in other CRMs are decided, and left for their own runs)."""
    results = run_sources(settings, state, [source], kind, model, progress, resume, since)
    if not results:
        raise typer.Exit(3)
    return results[0]


def _status(summaries: list[RunSummary]) -> str:
    """The top-level status of these runs (sync/outcome.py), a CRM left out as locked included."""
    return outcome.overall([s.status for s in summaries], busy=bool(BUSY))


def _exit_code(summaries: list[RunSummary]) -> int:
    return outcome.exit_code(_status(summaries))


def _run_json(s: RunSummary) -> dict[str, Any]:
    """One run as a command's whole output: `status` in the shared vocabulary, the run's own in `run_status`."""
    d = s.to_dict()
    return {**d, "run_status": d["status"], "status": outcome.word(s.status)}


def _totals(summaries: list[RunSummary]) -> dict[str, Any]:
    total: dict[str, Any] = {k: sum(getattr(s, k) for s in summaries) for k in SUM_KEYS}
    total["status"] = _status(summaries)
    changes: dict[str, int] = {}
    for s in summaries:
        for k, v in s.stage_changes.items():
            changes[k] = changes.get(k, 0) + v
    total["stage_changes"] = dict(sorted(changes.items()))
    total["duration_s"] = round(sum(s.duration_s for s in summaries), 3)
    total["runs"] = [s.to_dict() for s in summaries]
    return total


def _print_summary(s: RunSummary) -> None:
    colour = "green" if s.status == "ok" else "yellow"
    out.print(f"[bold]{s.kind}[/] {s.source} [dim]{s.run_id}[/] [{colour}]{s.status}[/]"
              + (f" — {crm(s.message)}" if s.message else ""))
    out.print(f"  pulled {s.contacts_pulled:,} contacts, {s.engagements_pulled:,} engagements; "
              f"scored {s.contacts_scored:,}")
    verb = "would update" if s.kind == "plan" else "updated"
    out.print(f"  {verb} {s.records_updated:,} records ({s.fields_updated:,} fields); "
              f"tasks {'to create' if s.kind == 'plan' else 'created'}: {s.tasks_created:,}; "
              f"failed {s.failed}, skipped {s.skipped}, data issues {s.issues}")
    if s.stage_changes:
        out.print("  stage changes: " + ", ".join(f"{k} {v}" for k, v in sorted(s.stage_changes.items())))
    if s.missing_fields:
        out.print(f"  [yellow]missing CRM fields[/] (run `leadsync init`): {crm(', '.join(s.missing_fields))}")
    out.print(f"  {s.api_calls:,} API calls in {s.duration_s:.1f}s")
    if s.failed or s.skipped or s.issues:
        out.print(LEGEND.format(run=s.run_id))


#: What the counts that need a person mean, printed under a run that has any.
LEGEND = ("  [dim]failed: the CRM rejected the write (retried next run, held after sync.max_attempts; "
          "`leadsync failures`) · skipped: the CRM says leadsync must not write that record (e.g. a Lead "
          "converted since it was read) · data issues: values leadsync could not read and scored as missing "
          "(`leadsync runs show {run}`)[/]")


@app.callback()
def _main(log_format: str = typer.Option("text", "--log-format", help="text or json (one object per line)."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each run's progress."),
          tenant: str = typer.Option(DEFAULT, "--tenant", envvar="LEADSYNC_TENANT", help=(
              "The team to work on, as declared in tenants.toml (LEADSYNC_TENANTS names the file); may follow "
              "any command. `default`: the environment and leadsync.toml."))) -> None:
    """leadsync: one honest lead score for HubSpot and Salesforce."""
    ctx.select(tenant)
    logs.setup(log_format, verbose)
    BUSY.clear()  # one invocation's locked CRMs (an in-process caller may invoke many)
    STOP.clear()
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, _on_sigint)


# ---------------------------------------------------------------------------- commands


@app.command()
def backfill(source: str | None = SOURCE,
             resume: bool = typer.Option(False, "--resume", help="Continue a killed or paused backfill."),
             since: datetime | None = typer.Option(None, "--since", help="Only records changed since (UTC date)."),
             yes: bool = typer.Option(False, "--yes", help=YES_HELP), new_state: bool = NEW_STATE,
             as_json: bool = JSON) -> None:
    """Full pull, score and writeback: one CRM, or every configured CRM as one (persons decided once)."""
    settings = ctx.settings()
    state = ctx.state(settings)
    names = _sources(settings, source)
    model = _model(settings)
    for name in names:  # a first backfill scores every contact: today's decay rescore is done (sync/schedule.py)
        if since is None and not state.count_contacts(name):
            note_rescore(state, name, datetime.now(timezone.utc).date())
    with _Progress(not as_json) as progress:
        summaries = [s for s, _ in run_sources(settings, state, names, "backfill", model, progress,
                                               resume, since, new_state, yes=yes)]
    if not summaries:
        if as_json:
            _emit({"runs": [], "busy": list(BUSY)}, status="busy")
        raise typer.Exit(outcome.BUSY)  # every CRM asked for was locked by another run (said on stderr)
    if as_json:
        _emit(_run_json(summaries[0]) if source else _totals(summaries))
    else:
        for s in summaries:
            _print_summary(s)
    raise typer.Exit(_exit_code(summaries))


@app.command()
def sync(once: bool = typer.Option(False, "--once", help="Run one incremental pass and exit."),
         every: str | None = typer.Option(None, "--every", help=(
             "Run repeatedly: a number and a unit (s, m, h, d), at least 1m; e.g. 15m, 1h, 1d. An edited "
             "scoring model is loaded again on the next cycle.")),
         source: str | None = SOURCE,
         rescore: bool = typer.Option(False, "--rescore", help=(
             "Score every stored contact again now. Not needed for time decay: the first sync of each UTC "
             "day does it by itself.")),
         yes: bool = typer.Option(False, "--yes", help=YES_HELP), new_state: bool = NEW_STATE,
         as_json: bool = JSON) -> None:
    """Incremental sync from the stored watermarks; the day's first one also rescores everyone (time decay)."""
    if not once and not every:
        raise typer.BadParameter("say --once or --every INTERVAL")
    interval = _interval(every) if every else 0.0
    settings = ctx.settings()
    state = ctx.state(settings)
    watch = ModelWatch(settings.model_path, lambda path: load_model(path) if path else default_model())
    STOPPABLE.set()  # Ctrl-C between cycles ends the loop too
    try:
        while True:
            summaries = _sync_cycle(settings, state, source, watch, rescore, yes, new_state, as_json)
            if once or STOP.is_set():
                break
            if STOP.wait(interval):
                break
    finally:
        STOPPABLE.clear()
    stopped_mid_run = any(s.status == "stopped" for s in summaries)
    raise typer.Exit(_exit_code(summaries) if once or stopped_mid_run else outcome.OK)


def _sync_cycle(settings: Settings, state: State, source: str | None, watch: Any, rescore: bool, yes: bool,
                new_state: bool, as_json: bool) -> list[RunSummary]:
    """One pass of `sync`: the model as its file is now, today's rescore if due, the runs, their output.

    The day's rescore (time decay, same model) is marked here; `--rescore` and a changed model go to the run,
    which re-scores everyone behind the safety guard (sync/guard.py)."""
    names = _sources(settings, source)
    model = watch.current()
    rescored = daily_rescore(state, names, datetime.now(timezone.utc).date())
    with _Progress(not as_json) as progress:
        summaries = [s for s, _ in run_sources(settings, state, names, "sync", model, progress,
                                               new_state=new_state, rescore=rescore, yes=yes)]
    if as_json:
        _emit({**_totals(summaries), "rescored": rescored, "model_problem": watch.problem})
        return summaries
    if watch.problem:
        err.print(f"[red]{crm(watch.problem)}[/]")
    if rescored:
        out.print(f"[dim]rescored every contact of {', '.join(rescored)} (time decay, once a day)[/]")
    for s in summaries:
        _print_summary(s)
    return summaries


def _interval(text: str) -> float:
    try:
        return parse_interval(text)
    except IntervalError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from exc


@app.command()
def plan(source: str | None = SOURCE, as_json: bool = JSON,
         limit: int = typer.Option(50, "--limit", min=1, help="Records, tasks and hand-offs to show per CRM "
                                   "(human output); the rest are counted, never silently cut."),
         show_all: bool = typer.Option(False, "--all", help="Show every change, task and hand-off."),
         model_path: Path | None = typer.Option(None, "--model", help=(
             "Preview this scoring model (a TOML file) instead of the configured one: everyone is re-scored "
             "with it, nothing is written.")),
         rescore: bool = typer.Option(False, "--rescore", help="Re-score every stored contact, as "
                                      "`sync --once --rescore` would.")) -> None:
    """The changes a sync would make, with a preview of who moves and why. Writes nothing to the CRM. Exit
    code as for `sync` (README)."""
    settings = ctx.settings()
    state = ctx.state(settings)
    model = load_model(model_path) if model_path else _model(settings)
    plans = run_sources(settings, state, _sources(settings, source), "plan", model,
                        rescore=rescore or model_path is not None)
    summaries = [s for s, _ in plans]
    preview = _preview(state, plans, model)
    # A plan never refuses (it writes nothing), but it says what a backfill or sync from this state would do.
    warnings = [why for s in summaries if (why := adopt.refusal(state, [s.source], new_state=False, dry=True))]
    if as_json:
        result = _totals(summaries)
        result["warnings"] = warnings
        result["preview"] = preview
        result["changes"] = [
            {"source": c.source, "object_type": c.object_type, "record_id": c.record_id, "email": c.email,
             "fields": {f: {"before": fc.before, "after": fc.after} for f, fc in c.fields.items()},
             "stage_from": c.stage_from, "stage_to": c.stage_to, "reasons": list(c.reasons)}
            for _, p in plans for c in p.set_fields
        ]
        result["tasks"] = [
            {"source": t.source, "contact_id": t.contact_id, "email": t.email, "owner_id": t.owner_id,
             "subject": t.subject, "body": t.body, "idempotency_key": t.idempotency_key}
            for _, p in plans for t in p.tasks
        ]
        result["handoffs"] = [_handoff_json(h) for _, p in plans for h in p.handoffs]
        result["nurture"] = [nurture_json(m) for _, p in plans for m in p.nurture]
        _emit(result)
        raise typer.Exit(_exit_code(summaries))
    shown = None if show_all else limit
    print_preview(preview, out, settings.safety.max_stage_moves_share)
    for why in warnings:
        err.print(f"[yellow]A sync from this state would refuse:[/] {crm(why)}")
    for s, p in plans:
        _print_summary(s)
        _print_plan(s.source, p, shown)
        _print_nurture_plan(s, p.nurture, shown)
    raise typer.Exit(_exit_code(summaries))


def _hidden(n: int, shown: int | None, what: str) -> None:
    """Say how many rows were left out and how to see them: output is never cut silently."""
    _hidden_rows(n, shown, what, "leadsync plan --all")


NO_TASK_OWNER = "(none sent: the API user in Salesforce, unassigned in HubSpot)"


def _print_plan(source: str, p: Any, shown: int | None) -> None:
    """One CRM's planned changes, tasks with their owners, and hand-offs: `shown` of each, or all."""
    table = Table("record", "field", "before", "after", "why", title=f"{source}: planned changes",
                  show_lines=False)
    for c in p.set_fields[:shown]:
        for i, (f, fc) in enumerate(c.fields.items()):
            table.add_row(crm(c.email or c.record_id) if i == 0 else "", crm(f), crm(str(fc.before)),
                          crm(str(fc.after)), crm("; ".join(c.reasons[:2])) if i == 0 else "")
    if p.set_fields:
        out.print(table)
    _hidden(len(p.set_fields), shown, "records with changes")
    if p.tasks:
        tasks = Table("for", "owner", "task", title=f"{source}: follow-up tasks to create ({len(p.tasks):,})")
        for t in p.tasks[:shown]:
            tasks.add_row(crm(t.email or t.contact_id), crm(t.owner_id or NO_TASK_OWNER), crm(t.subject))
        out.print(tasks)
    _hidden(len(p.tasks), shown, "tasks")
    for h in p.handoffs[:shown]:
        out.print(f"  [bold]create[/] {h.target} {h.object_type} for {crm(h.values.get('email') or h.origin)} "
                  f"({h.origin}, reached {h.stage.value}), owner {crm(h.values.get('owner_id') or '(default)')}: "
                  f"{crm('; '.join(h.reasons[:2]))}")
    _hidden(len(p.handoffs), shown, "hand-offs")


def _print_nurture_plan(s: RunSummary, changes: list[Any], limit: int) -> None:
    """Nurture enrolments and exits a sync would make (sync/nurture.py)."""
    if not changes:
        return
    where = "list" if s.source == "hubspot" else "campaign"
    out.print(f"  nurture: {s.nurture_added:,} to enrol, {s.nurture_removed:,} to take out of the {where}")
    for m in changes[:limit]:
        out.print(f"  [bold]{'enrol' if m.add else 'exit'}[/] {crm(m.email or m.record_id)} ({m.object_type} "
                  f"{crm(m.record_id)}) {'in' if m.add else 'from'} {where} {crm(m.target)}"
                  + (f", status {crm(m.status)}" if m.status else ""))


def _preview(state: State, plans: list[tuple[RunSummary, Any]], model: ScoringModel) -> dict[str, Any]:
    """Who the plan moves and why, against the scores the last applied run wrote."""
    last: dict[str, tuple[int | None, str | None]] = {}
    for s, p in plans:
        ids = [k.partition(":")[2] for k in p.scores if k.startswith(f"{s.source}:")]
        last.update({f"{s.source}:{cid}": v for cid, v in state.score_totals(s.source, ids).items()})
    return build_preview(plans, last, model.label,
                         last_detail=lambda key: state.score_detail(*key.split(":", 1)))


def _handoff_json(h: Any) -> dict[str, Any]:
    return {"origin": h.origin, "target": h.target, "object_type": h.object_type, "idempotency_key": h.key,
            "stage": h.stage.value, "values": dict(h.values), "fields": dict(h.managed), "reasons": list(h.reasons),
            "task": {"subject": h.task[0], "body": h.task[1]} if h.task else None}


@app.command()
def explain(email: str, as_json: bool = JSON) -> None:
    """A person's score, stage and every reason with its points, across every CRM that holds them."""
    settings = ctx.settings()
    state = ctx.state(settings)
    model = _model(settings)
    now = scoring_time(datetime.now(timezone.utc))
    found = state.contact_by_email(email)
    if not found:
        message = f"no contact with email {email!r} in the state store ({state.describe_url()}); run a backfill first"
        if as_json:
            _emit({"email": email, "contacts": [], "error": message}, status="error")
        else:
            err.print(f"[red]{crm(message)}[/]")
        raise typer.Exit(outcome.FAILED)
    results = []
    for person, records, d in _decisions(state, model, settings, found, now):
        routing = _routing_of(state, settings, d, records, now)
        for c in records:
            results.append({"source": c.source, "id": c.id, "object_type": c.object_type, "name": c.name,
                            "crm_stage": c.lifecycle_stage.value if c.lifecycle_stage else None,
                            "person": person.key, "score": d.score.to_dict(),
                            "provenance": d.profile.provenance_dict(), "routing": routing})
        if not as_json:
            _print_explanation(d.profile.contact, d.score, records=records, provenance=d.profile.provenance_dict())
            _print_routing(routing)
    if as_json:
        _emit({"email": email, "contacts": results})


def _routing_of(state: State, settings: Settings, d: Any, records: list[Any], now: datetime) -> dict[str, Any] | None:
    """The person's owner routing (sync/routing_run.py), when routing is on."""
    if not settings.routing.enabled:
        return None
    from sync.routing_run import explain as explain_routing

    return explain_routing(state, settings.routing.policy(), d, records, now.date())


def _print_routing(routing: dict[str, Any] | None) -> None:
    if routing is None:
        return
    who = routing["rep"] or routing["owner_id"] or "the CRM's default owner"
    when = f", {routing['at'][:16]} in run {routing['run_id']}" if routing["persisted"] else " (would be)"
    out.print(f"  owner routing: [bold]{crm(who)}[/] by {crm(routing['rule'])}{when}")
    out.print("  Routed: " + crm("; ".join(routing["reasons"])))


def _decisions(state: State, model: ScoringModel, settings: Settings, found: list[Any], now: datetime
               ) -> list[tuple[Any, list[Any], Any]]:
    """The persons behind these records, decided as a sync would (nothing is written)."""
    from sync.decide import decide
    from sync.persons import gather

    batch = gather(state, found)
    persons = {p.key: p for c in found if (p := batch.person_of().get(c.key))}
    out = []
    for p in persons.values():
        records = [batch.records[k] for k in p.records]
        engagements: dict[str, list[Any]] = {}
        for c in records:
            engagements[c.key] = state.engagements_for(c.source, [c.id])[c.id]
        d = decide(records, engagements, model, now, now, mapping_for, settings.person_policy(), anchor=p.records[0])
        out.append((p, records, d))
    return out


_URL_HOST = re.compile(r"https?://[^/\s]+")


def _print_explanation(c: Any, s: Any, limit: int | None = None, records: list[Any] | None = None,
                       provenance: dict[str, Any] | None = None, console: Console | None = None) -> None:
    con = console or out
    stage = c.lifecycle_stage.value if c.lifecycle_stage else "none"
    con.print(f"[bold]{crm(c.name)}[/] <{crm(c.email or '')}> — {c.source} {c.object_type} {c.id}")
    for r in records or []:
        if r.key != c.key:
            rs = r.lifecycle_stage.value if r.lifecycle_stage else "none"
            con.print(f"  also {r.source} {r.object_type} {r.id} (CRM stage {rs})")
    con.print(f"  CRM stage: {stage}; score implies: [bold]{s.stage.value}[/]  "
              f"(fit {s.fit}, engagement {s.engagement}, total {s.total})")
    if s.disqualified:
        con.print(f"  [red]blocked:[/] {crm(s.disqualified)}")
    if provenance and len(records or []) > 1:
        facts = [f"{f} from {p['source']} {p['record_id']}" + (f" ({p['at'][:10]})" if p["at"] else "")
                 for f, p in provenance.items() if f in ("title", "company", "company_size", "industry", "country")]
        if facts:
            con.print("  fit facts: " + "; ".join(facts))
    table = Table("kind", "points", "reason", "evidence")
    reasons = sorted(s.reasons, key=lambda r: -abs(r.points))[:limit] if limit else s.reasons
    for r in reasons:
        evidence = "\n".join(_URL_HOST.sub("", e) for e in r.evidence[:3])  # paths read better than URLs
        table.add_row(r.kind, f"{r.points:+d}", crm(r.text), crm(evidence))
    con.print(table)
    if limit and len(s.reasons) > limit:
        con.print(f"  … {len(s.reasons) - limit} more reasons (`leadsync explain` shows them all)")
    if s.interests:
        con.print("  cared about: " + crm(", ".join(s.interests)))


@app.command()
def report(since: datetime | None = typer.Option(None, "--since", help="Start of the window (date)."),
           until: datetime | None = typer.Option(None, "--until", help="End of the window (date)."),
           weeks: int = typer.Option(12, "--weeks", help="Weekly flow over this many weeks (default window)."),
           html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report."),
           as_json: bool = JSON) -> None:
    """The funnel marketing and sales share, from the state store (no CRM calls)."""
    state = ctx.state()
    try:
        figures = build_report(state, now=datetime.now(timezone.utc), since=since, until=until, weeks=weeks)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if html:
        render_html(figures, html)
    if as_json:
        _emit({**figures, "html": str(html) if html else None})
        return
    render_terminal(figures, out)
    if html:
        out.print(f"HTML report: {html}")


@app.command()
def runs(words: list[str] | None = typer.Argument(None, metavar="[show] [RUN_ID]"), as_json: bool = JSON,
         limit: int = typer.Option(20, "--limit", min=1, help="Runs to list; with `show`, rows per section."),
         show_all: bool = typer.Option(False, "--all", help="With `show`: every write, task and issue.")) -> None:
    """Recent runs; `runs show RUN_ID` (or `runs RUN_ID`) for one run with its audit trail."""
    state = ctx.state()
    words = [w for w in (words or []) if w != "show"]
    run_id = words[0] if words else None
    if run_id:
        run = state.run(run_id)
        if not run:
            if as_json:
                _emit({"run_id": run_id, "error": f"no run {run_id!r}"}, status="error")
            err.print(f"[red]No run {crm(repr(run_id))}[/] — `leadsync runs` lists them.")
            raise typer.Exit(outcome.FAILED)
        run["audit"] = state.audit_for_run(run_id)
        run["tasks"] = state.tasks_for_run(run_id)
        run["issues"] = state.issues(run_id)
        if as_json:
            _emit(run)
            return
        _print_run(run, None if show_all else limit)
        return
    rows = state.runs(limit)
    if as_json:
        _emit({"runs": rows})
        return
    table = Table("run", "kind", "source", "status", "started", "updated", "tasks", "failed", "calls")
    for r in rows:
        s = r["summary"]
        table.add_row(r["id"], r["kind"], r["source"], r["status"], r["started_at"][:19],
                      str(s.get("records_updated", "")), str(s.get("tasks_created", "")),
                      str(s.get("failed", "")), str(s.get("api_calls", "")))
    out.print(table)


@app.command()
def undo(run_id: str, as_json: bool = JSON,
         plan_only: bool = typer.Option(False, "--plan", help="Show what undo would restore, and what it would "
                                        "leave because someone edited it since; write nothing."),
         yes: bool = typer.Option(False, "--yes", help="Do not ask (required when stdin is not a terminal)."),
         reapply: bool = typer.Option(False, "--reapply", help="Take an undo of RUN_ID back: the contacts it "
                                      "restored are decided afresh by the next sync.")) -> None:
    """Restore the fields a run changed (where the CRM still holds what it wrote) and close its tasks.

    The run then stays undone: later syncs leave its contacts as undo restored them until their inputs change
    or `--reapply`. A killed undo is run again the same way and ends where an unkilled one would."""
    from sync.undo import plan_undo
    from sync.undo import reapply as reapply_run

    settings = ctx.settings()
    state = ctx.state(settings)
    run = state.run(run_id)
    if run is None:
        err.print(f"[red]No run {run_id!r}[/] — `leadsync runs` lists them.")
        raise typer.Exit(1)
    if reapply:
        released = _locked(state, run["source"], lambda: reapply_run(state, run["source"], run_id))
        if as_json:
            _emit({"run_id": run_id, "released": len(released)})
        else:
            out.print(f"{len(released)} contacts undone from {run_id} will be decided afresh by the next sync")
        return
    connector = make_connector(run["source"], settings)
    try:
        if plan_only or not yes:
            preview = plan_undo(state, connector, run_id)
            if plan_only:
                if as_json:
                    _emit(preview.to_dict())
                else:
                    _print_undo_plan(run_id, preview)
                return
            _confirm_undo(run_id, preview)
        summary = _locked(state, run["source"], lambda: undo_run(state, connector, run_id))
    finally:
        connector.close()
    done = outcome.word(summary.status)
    if as_json:
        _emit({**summary.to_dict(), "run_status": summary.status}, status=done)
        raise typer.Exit(outcome.exit_code(done))
    out.print(f"undo of {run_id} ({summary.run_id}): restored {summary.fields_restored} fields on "
              f"{summary.records_updated} records, closed {summary.tasks_closed} tasks, failed {summary.failed}")
    if summary.records_deleted or summary.records_left:
        out.print(f"  deleted {summary.records_deleted} hand-off records nobody had touched")
    if summary.nurture_reverted or summary.nurture_left:
        out.print(f"  nurture: {summary.nurture_reverted} memberships reverted, {len(summary.nurture_left)} left "
                  "(changed again since)")
    for left in summary.records_left[:50]:
        out.print(f"  [yellow]left[/] hand-off record {crm(left['record_id'])} (from {crm(left['origin'])}): "
                  f"{crm(left['why'])}")
    _print_left(summary.fields_left)
    raise typer.Exit(outcome.exit_code(done))


def _print_run(run: dict[str, Any], shown: int | None) -> None:
    """`runs show`: the run, then its writes, tasks and data issues, each with the record's email."""
    out.print(f"[bold]{run['id']}[/] {run['kind']} {run['source']} {run['status']} "
              f"{run['started_at']} → {run['finished_at']}")
    if run["summary"].get("message"):
        out.print(f"  {crm(run['summary']['message'])}")
    for a in run["audit"][:shown]:
        who = f" <{crm(a['email'])}>" if a.get("email") else ""
        out.print(f"  {crm(a['object_type'])} {crm(a['record_id'])}{who} {crm(a['field'])}: "
                  f"{crm(str(a['before']))} → {crm(str(a['after']))}")
    _hidden_rows(len(run["audit"]), shown, "writes", f"leadsync runs show {run['id']} --all")
    for t in run["tasks"][:shown]:
        out.print(f"  [bold]task[/] for {crm(t['contact_id'])} <{crm(t['email'] or '')}> owner "
                  f"{crm(t['owner_id'] or '(none)')}: {t['status']}" + (f" ({crm(t['crm_id'])})" if t["crm_id"] else ""))
    _hidden_rows(len(run["tasks"]), shown, "tasks", f"leadsync runs show {run['id']} --all")
    for i in run["issues"][:shown]:
        who = f" <{crm(i['email'])}>" if i.get("email") else ""
        out.print(f"  [yellow]data issue[/] {crm(i['source'])} {crm(i['record_id'])}{who} {crm(i['field'])}: "
                  f"{crm(i['message'])}")
    _hidden_rows(len(run["issues"]), shown, "data issues", f"leadsync runs show {run['id']} --all")
    if run["issues"]:
        out.print("  [dim]data issue: a value leadsync could not read; it was scored as missing and the record "
                  "still synced[/]")


def _hidden_rows(n: int, shown: int | None, what: str, how: str) -> None:
    if shown is not None and n > shown:
        out.print(f"  … {n - shown:,} more {what} not shown (of {n:,}): `{how}`, `--limit N` or `--json`")


def _locked(state: State, source: str, fn: Any) -> Any:
    """`fn()` under the source's writer lock, or exit 3 naming who holds it."""
    try:
        with writer_lock(state, source):
            return fn()
    except LockBusy as exc:
        err.print(f"[red]{crm(exc)}[/]")
        raise typer.Exit(3) from exc


def _confirm_undo(run_id: str, preview: Any) -> None:
    """Ask before writing to the CRM; without a terminal to ask on, refuse unless --yes (exit 2)."""
    if not sys.stdin.isatty():
        err.print(f"[red]Refusing to undo {run_id} without confirmation:[/] stdin is not a terminal. "
                  "Check `leadsync undo --plan RUN_ID`, then run it again with --yes.")
        raise typer.Exit(2)
    _print_undo_plan(run_id, preview)
    if not typer.confirm(f"Undo run {run_id}?", default=False):
        err.print("Nothing undone.")
        raise typer.Exit(1)


def _print_undo_plan(run_id: str, preview: Any) -> None:
    records = len({f["record_id"] for f in preview.fields_to_restore})
    out.print(f"undo of {run_id} would restore {len(preview.fields_to_restore)} fields on {records} records and "
              f"leave {len(preview.fields_left)} fields changed since")
    for f in preview.fields_to_restore[:50]:
        out.print(f"  restore {crm(f['record_id'])} {crm(f['field'])}: {crm(repr(f['from']))} → {crm(repr(f['to']))}")
    _print_left(preview.fields_left)


def _print_left(left: list[dict[str, Any]]) -> None:
    for f in left[:50]:
        out.print(f"  [yellow]left[/] {crm(f['record_id'])} {crm(f['field'])}: the run wrote "
                  f"{crm(repr(f['run_wrote']))}, the CRM now holds {crm(repr(f['crm_now']))} (changed since)")


@app.command()
def failures(source: str | None = SOURCE, retry: bool = typer.Option(False, "--retry",
             help="Plan the failed records again and run a sync now."), as_json: bool = JSON) -> None:
    """Records the CRM rejected, with its reason; --retry tries them again."""
    settings = ctx.settings()
    state = ctx.state(settings)
    result: dict[str, Any] = {"failures": state.failures(source)}
    if retry:
        sources = sorted({f["source"] for f in result["failures"]})
        summaries = []
        for name in sources:
            state.requeue_failures(name)
            summaries.append(run_source(settings, state, name, "sync", _model(settings))[0])
        result["retry"] = _totals(summaries)
        result["failures"] = state.failures(source)
    if as_json:
        _emit(result, status=result["retry"]["status"] if retry else "ok")
        if retry:
            raise typer.Exit(_exit_code(summaries))
        return
    if retry:
        for s in summaries:
            _print_summary(s)
    table = Table("source", "record", "email", "change", "code", "message", "attempts", "status")
    for f in result["failures"]:
        table.add_row(f["source"], crm(f["record_id"]), crm(f["email"] or ""), f["kind"], crm(f["error_code"]),
                      crm((f["message"] or "")[:80]), str(f["attempts"]), f["status"])
    out.print(table if result["failures"] else "No failures.")
    if result["failures"]:
        out.print("  [dim]retry: tried again on the next run · held: refused sync.max_attempts times, left for a "
                  "person (fix the record or the rule, then `leadsync failures --retry`)[/]")
    if retry:
        raise typer.Exit(_exit_code(summaries))


@app.command("alerts")
def alerts_cmd(retry: bool = typer.Option(False, "--retry", help="Queue held and failed alerts again."),
               as_json: bool = JSON) -> None:
    """The alert ledger: hand-off alerts and SLA escalations by status (`unconfirmed`: may have arrived, never
    re-sent); `--retry` queues held and failed ones again for the next sync."""
    from sync import routing_state as rs
    from sync.alerts import release

    state = ctx.state()
    rows = rs.alerts(state, ("queued", "sending", "held", "failed", "unconfirmed", "sent", "skipped"))
    requeued = release(state, [r["key"] for r in rows if r["status"] in ("held", "failed")]) if retry else 0
    shown = [{k: r[k] for k in ("key", "kind", "channel", "target", "status", "attempts", "error", "created_at",
                                "sent_at")} for r in rows]
    if as_json:
        _emit({"alerts": shown, "counts": rs.alert_counts(state), "requeued": requeued})
        return
    table = Table("kind", "target", "status", "tries", "error", "task", title="Alerts")
    for r in shown:
        table.add_row(r["kind"], crm(r["target"]), r["status"], str(r["attempts"]), crm(r["error"] or ""),
                      crm(r["key"].split(":")[1]))
    out.print(table)
    if retry:
        out.print(f"{requeued} held or failed alert(s) queued again: the next sync sends them")


@app.command()
def init(source: str | None = SOURCE, as_json: bool = JSON,
         write_config: bool = typer.Option(True, "--write-config/--no-write-config",
                                           help="Write a starter leadsync.toml if there is none.")) -> None:
    """Create the CRM fields leadsync writes (idempotent) and a starter leadsync.toml."""
    settings = ctx.settings()
    result: dict[str, Any] = {"created": {}, "config": None}
    failed: dict[str, str] = {}
    for name in _sources(settings, source):
        connector = make_connector(name, settings)
        try:
            result["created"][name] = connector.ensure_fields()
        except ConnectorError as exc:  # credentials or permissions: say which CRM and why, go on with the rest
            failed[name] = f"{type(exc).__name__}: {exc}"
            err.print(f"[red]{name}: {crm(failed[name])}[/]")
        finally:
            connector.close()
    result["errors"] = failed
    cfg = Path("leadsync.toml")
    if write_config and ctx.tenant() == DEFAULT and not cfg.exists():  # a tenant lives in tenants.toml
        cfg.write_text(STARTER_CONFIG)
        result["config"] = str(cfg)
    if as_json:
        _emit(result, status="error" if failed else "ok")
    else:
        for name, created in result["created"].items():
            out.print(f"{name}: " + (f"created {', '.join(created)}" if created else "all fields present"))
        if result["config"]:
            out.print(f"wrote {result['config']}")
    raise typer.Exit(outcome.FAILED if failed else outcome.OK)


STARTER_CONFIG = """\
# leadsync settings. Environment variables (LEADSYNC_…, nested with __) override this file.
# Secrets (tokens, passwords, keys) belong in the environment, not here.
# state_url = "postgresql://user@db.example/leadsync"   # default: SQLite in the per-user data directory
#   (the same from any folder; `leadsync status` prints where). A relative sqlite path would depend on the
#   folder leadsync runs from: give an absolute one.
# model_path = "scoring.toml"   # your scoring model; the shipped default when unset

[hubspot]
base_url = "https://api.hubapi.com"

[salesforce]
# instance_url = "https://acme.my.salesforce.com"
api_version = "59.0"

[sync]
batch_size = 1000
max_attempts = 5
task_due_days = 1

# [nurture]                          # MQLs not yet sales-ready join a static list and/or a campaign (README)
# hubspot_list_id = "5001"           # a MANUAL contact list
# salesforce_campaign_id = "701…"    # a Campaign; members get member_status, leave with exit_status or deleted
# member_status = "Sent"
"""


@app.command()
def demo(contacts: int = typer.Option(2000, "--contacts", help="People to seed the sandbox with."),
         seed: int = typer.Option(1, "--seed"), as_json: bool = JSON,
         state_dir: Path | None = typer.Option(None, "--state-dir", help="Where to keep the demo's state.")) -> None:
    """Start the sandbox in-process, backfill both CRMs, show the funnel."""
    from sandbox.run import start_sandbox
    from sync.demo import nurture_story, nurture_targets, story
    from sync.settings import NurtureSettings

    sb = start_sandbox(contacts=contacts, seed=seed)
    try:
        state_path = (state_dir or Path(tempfile.mkdtemp(prefix="leadsync-demo-"))) / "state.db"
        list_id, campaign_id = nurture_targets(sb)
        settings = _sandbox_settings(sb, f"sqlite:///{state_path}")
        settings.nurture = NurtureSettings(hubspot_list_id=list_id, salesforce_campaign_id=campaign_id)
        state = State(settings.state_url)
        model = _model(settings)
        both = ["hubspot", "salesforce"]
        with _Progress(not as_json) as progress:
            backfills = [s for s, _ in run_sources(settings, state, both, "backfill", model, progress)]
            again = [s for s, _ in run_sources(settings, state, both, "sync", model)]
        funnel = state.stage_counts()
        html = state_path.parent / "leadsync-report.html"
        render_html(build_report(state, now=datetime.now(timezone.utc)), html)
        result = {"runs": [s.to_dict() for s in backfills], "second_sync": _totals(again), "funnel": funnel,
                  "state_url": settings.state_url, "sandbox_api_calls": sb.api_calls(), "report_html": str(html)}
        if not as_json:
            _print_demo(backfills, again, funnel, settings.state_url)
        quiet = Console(file=open(os.devnull, "w")) if as_json else out  # noqa: SIM115 - lives as long as the demo
        result["nurture"] = nurture_story(sb, state, quiet, list_id, campaign_id)
        result["persons"] = story(
            sb, state, quiet, lambda: run_sources(settings, state, both, "sync", model),
            lambda email: [_print_explanation(d.profile.contact, d.score, limit=8, records=records,
                                              provenance=d.profile.provenance_dict(), console=quiet)
                           for _, records, d in _decisions(state, model, settings, state.contact_by_email(email),
                                                           scoring_time(datetime.now(timezone.utc)))])
        from sync.demo_routing import routing_story

        result["routing"] = routing_story(state, quiet)
        done = outcome.overall([s.status for s in backfills])
        if as_json:
            _emit(result, status=done)
        else:
            out.print(f"Funnel report (open in a browser): [bold]{html}[/]")
        ok = done == "ok"
    finally:
        sb.stop()
    raise typer.Exit(0 if ok else 1)


def _sandbox_settings(sb: Any, state_url: str) -> Settings:
    from connectors.hubspot.settings import HubSpotSettings
    from connectors.salesforce.settings import SalesforceSettings
    from sync.demo_routing import demo_routing

    env = sb.env()
    routing, alerts = demo_routing(datetime.now(timezone.utc).date())
    return Settings(
        routing=routing, alerts=alerts,
        hubspot=HubSpotSettings(access_token=env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"],
                                base_url=env["LEADSYNC_HUBSPOT__BASE_URL"]),
        salesforce=SalesforceSettings(instance_url=env["LEADSYNC_SALESFORCE__INSTANCE_URL"],
                                      session_id=env["LEADSYNC_SALESFORCE__SESSION_ID"],
                                      ca_bundle=env["LEADSYNC_SALESFORCE__CA_BUNDLE"]),
        state_url=state_url,
    )


STAGE_ORDER = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "other", "unknown")


def _print_demo(backfills: list[RunSummary], again: list[RunSummary], funnel: dict[str, dict[str, int]],
                state_url: str) -> None:
    out.rule("[bold]leadsync demo[/]: sandbox HubSpot + Salesforce")
    table = Table("stage", *[s.source for s in backfills], title="Funnel after the backfill (contacts per stage)")
    for stage in STAGE_ORDER:
        counts = [funnel.get(s.source, {}).get(stage, 0) for s in backfills]
        if any(counts):
            table.add_row(stage, *[f"{n:,}" for n in counts])
    out.print(table)
    t2 = Table("", *[s.source for s in backfills], title="What the backfill did")
    t2.add_row("contacts pulled", *[f"{s.contacts_pulled:,}" for s in backfills])
    t2.add_row("engagements pulled", *[f"{s.engagements_pulled:,}" for s in backfills])
    keys = sorted({k for s in backfills for k in s.stage_changes})
    for k in keys:
        t2.add_row(f"stage {k}", *[f"{s.stage_changes.get(k, 0):,}" for s in backfills])
    t2.add_row("records updated", *[f"{s.records_updated:,}" for s in backfills])
    t2.add_row("follow-up tasks created", *[f"{s.tasks_created:,}" for s in backfills])
    t2.add_row("failed / skipped", *[f"{s.failed} / {s.skipped}" for s in backfills])
    t2.add_row("API calls", *[f"{s.api_calls:,}" for s in backfills])
    t2.add_row("seconds", *[f"{s.duration_s:.1f}" for s in backfills])
    out.print(t2)
    writes = sum(s.records_updated + s.tasks_created for s in again)
    out.print(f"Second pass (`sync --once`): {writes} writes, {sum(s.api_calls for s in again)} API calls "
              "— nothing changed, so nothing is written.")
    out.print(f"State: {state_url}  ·  try `LEADSYNC_STATE_URL={state_url} leadsync runs`")


@sandbox_app.command("serve")
def sandbox_serve(port: int = typer.Option(0, "--port", help="HubSpot port; Salesforce gets port+1. 0: free ports."),
                  contacts: int = typer.Option(2000, "--contacts"), seed: int = typer.Option(1, "--seed"),
                  hubspot_burst: int = typer.Option(190, "--hubspot-burst",
                                                    help="HubSpot requests allowed per rolling 10 s."),
                  fault: list[str] | None = typer.Option(None, "--fault", help=(
                      "Inject a fault, repeatable: CRM:ENDPOINT=STATUS[@RATE][xCOUNT], =drop[@RATE] or =+MSms; "
                      "e.g. hubspot:contacts.list=503@0.2. Also at POST /_sandbox/faults.")),
                  state: Path | None = typer.Option(None, "--state", help=(
                      "Directory to keep the CRMs' records in: a restarted sandbox carries on where it was.")),
                  field_history: bool = typer.Option(True, "--field-history/--no-field-history", help=(
                      "Whether the Salesforce org tracks Lead/Contact field history (LeadHistory rows)."))) -> None:
    """Run both emulators on loopback; print one JSON line with URLs and credentials."""
    from sandbox.run import start_sandbox

    try:
        sb = start_sandbox(contacts=contacts, seed=seed, hubspot_port=port, salesforce_port=port + 1 if port else 0,
                           burst_limit=hubspot_burst, faults=tuple(fault or ()), state_dir=state,
                           field_history=field_history)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sys.stdout.write(json.dumps(sb.describe()) + "\n")
    sys.stdout.flush()
    try:
        while not STOP.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


def _calibrate_from_state(history: HistorySettings, since: str) -> HistoryCalibration:
    """Point-in-time calibration of the configured model over every person in the state store."""
    settings = ctx.settings()
    state = ctx.state(settings)
    today = datetime.now(timezone.utc).date()
    people = subjects(state, outcomes_from_state(state), settings.person_policy().rules)
    if not people:
        raise typer.BadParameter("the state store has no contacts yet: run a backfill first")
    return calibrate_history(_model(settings), people, parse_since(since, today), today, history)


register_scoring(app, _calibrate_from_state)
register_backtest(app, outcomes_from_state)
app.command()(status)


def main() -> None:
    """The `leadsync` command."""
    app()


if __name__ == "__main__":
    main()
