"""Running the engine for one team: what `leadsync backfill` / `sync` and the Dagster jobs share.

The CLI adds its terminal (progress, Ctrl-C, exit codes) around `run_sources`; an orchestrator calls
`run_tenant`, which opens the tenant's state, loads its model and returns the runs' summaries as data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.base import Connector, ConnectorError, registry
from scoring import ScoringModel, default_model, load_model
from sync import adopt, outcome
from sync.engine import Engine, RunSummary
from sync.guard import MoveGuard
from sync.lock import LockBusy, writer_lock
from sync.schedule import daily_rescore, note_rescore
from sync.settings import Settings
from sync.state import State
from sync.tenants import Tenant


class UnknownSource(ConnectorError):
    """A source no installed connector serves."""


def make_connector(name: str, settings: Settings) -> Connector:
    classes = registry()
    if name not in classes:
        raise UnknownSource(f"unknown source {name!r}; installed connectors: {', '.join(sorted(classes))}")
    return classes[name](getattr(settings, name))


def model_of(settings: Settings) -> ScoringModel:
    return load_model(settings.model_path) if settings.model_path else default_model()


def preview_hint(settings: Settings) -> str:
    return f"leadsync plan --model {settings.model_path}" if settings.model_path else "leadsync plan --rescore"


@dataclass
class Ran:
    """The runs that happened, and the CRMs left out because another run held their writer lock."""

    results: list[tuple[RunSummary, Any]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    @property
    def summaries(self) -> list[RunSummary]:
        return [s for s, _ in self.results]


def run_sources(settings: Settings, state: State, sources: list[str], kind: str, model: ScoringModel,
                progress: Any = None, resume: bool = False, since: datetime | None = None,
                new_state: bool = False, *, rescore: bool = False, yes: bool = False,
                stop: threading.Event | None = None, on_busy: Callable[[LockBusy], None] | None = None,
                on_start: Callable[[], None] | None = None) -> Ran:
    """One run over these CRMs as one sync (persons decided once, across them), holding each CRM's writer
    lock, taken in name order so two runs never wait on each other crosswise. A CRM whose lock another run
    holds is left out (`busy`); the others still run. A plan writes nothing to the CRM, but it refreshes the
    local snapshot and watermarks, so it takes the locks too. A backfill or sync on a state that has never
    synced a CRM refuses if that CRM already carries leadsync's values, unless `new_state` (sync/adopt.py)."""
    from sync.coordinator import Sync

    engines: dict[str, Engine] = {}
    ran = Ran()
    with ExitStack() as stack:
        for source in sorted(sources):
            try:
                stack.enter_context(writer_lock(state, source))
            except LockBusy as exc:
                if on_busy:
                    on_busy(exc)
                ran.busy.append(source)
                continue
            connector = make_connector(source, settings)
            stack.callback(connector.close)
            engines[source] = Engine(
                state, connector, model, max_attempts=settings.sync.max_attempts,
                batch_size=settings.sync.batch_size, due_days=settings.sync.task_due_days,
                create_tasks=settings.sync.create_tasks, on_progress=progress, stop=stop,
                policy=settings.person_policy())
        if not engines:
            return ran
        state.mark_killed_runs(holding=list(engines))  # runs a killed process left `running`, before ours starts
        check = None if kind == "plan" else (lambda live: adopt.refusal(state, live, new_state))
        guard = MoveGuard(settings.safety.max_stage_moves_share, yes, preview_hint(settings))
        if on_start:
            on_start()
        results = Sync(state, engines, model, settings.person_policy(), settings.routing, settings.alerts,
                       rescore=rescore, guard=guard).run(kind, resume, since, check)
    ran.results = [results[s] for s in sources if s in results]
    return ran


@dataclass
class TenantRun:
    """One tenant's sync or backfill, as an orchestrator reports it."""

    tenant: str
    kind: str
    summaries: list[RunSummary]
    busy: list[str]
    rescored: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The shared outcome word (sync/outcome.py): ok, partial, paused, refused, busy, error, stopped."""
        return outcome.overall([s.status for s in self.summaries], busy=bool(self.busy))


def run_tenant(tenant: Tenant, kind: str, *, since: datetime | None = None, resume: bool = False,
               new_state: bool = False, yes: bool = False, stop: threading.Event | None = None,
               today: datetime | None = None) -> TenantRun:
    """`leadsync backfill` or `leadsync sync --once` for one tenant, every CRM it configures, as data."""
    if kind not in ("sync", "backfill"):
        raise ValueError(f"kind must be sync or backfill, got {kind!r}")
    settings = tenant.settings
    state = State(settings.state_url, tenant=tenant.name)
    try:
        names = settings.configured_sources()
        day = (today or datetime.now(timezone.utc)).date()
        rescored: list[str] = []
        if kind == "backfill":  # a first backfill scores every contact: today's decay rescore is done
            for name in names:
                if since is None and not state.count_contacts(name):
                    note_rescore(state, name, day)
        else:
            rescored = daily_rescore(state, names, day)
        ran = run_sources(settings, state, names, kind, model_of(settings), resume=resume, since=since,
                          new_state=new_state, yes=yes, stop=stop)
        return TenantRun(tenant.name, kind, ran.summaries, ran.busy, rescored)
    finally:
        state.close()
