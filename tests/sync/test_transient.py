"""Which failures an orchestrator may retry (a transient one) and which need a person, and how a tenant's
run outcome maps onto success / retry / fail (sync/orchestrate/report.py; no Dagster needed)."""

from __future__ import annotations

import psycopg
import requests

from connectors.base import AuthError, ConfigError, ConnectorError, QuotaExhausted
from connectors.hubspot.transport import Transient
from sync import outcome
from sync.engine import RunSummary
from sync.orchestrate.report import pause_kind, run_tags, verdict
from sync.runner import TenantRun


def _raised(exc: Exception, cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise exc from inner
    except Exception as caught:
        return caught


def test_transient_errors_are_the_network_5xx_and_a_lost_database():
    assert outcome.transient(Transient("HubSpot 503: unavailable"))
    assert outcome.transient(ConnectorError("query: 503", status=503))
    assert outcome.transient(_raised(ConnectorError("query failed"), requests.ConnectionError("reset")))
    assert outcome.transient(_raised(RuntimeError("state"), psycopg.OperationalError("server closed")))
    for permanent in (AuthError("expired", status=401), ConfigError("no field", status=500),
                      QuotaExhausted("daily", code="DAILY", status=429), ConnectorError("bad", status=400),
                      ConnectorError("bulk job Failed"), ValueError("model")):
        assert not outcome.transient(permanent), permanent


def _run(*summaries: RunSummary, busy: tuple[str, ...] = ()) -> TenantRun:
    return TenantRun("acme", "sync", list(summaries), list(busy))


def _summary(source: str, status: str, *, code: str | None = None, transient: bool = False) -> RunSummary:
    return RunSummary(f"r-{source}", source, "sync", status=status, message=f"{source} says {status}", code=code,
                      transient=transient)


def test_outcomes_map_onto_success_retry_and_fail():
    ok, paused = _summary("hubspot", "ok"), _summary("salesforce", "paused: quota", code="DAILY")
    assert verdict(_run(ok, paused)).outcome == "success"
    assert verdict(_run(_summary("hubspot", "ok with failures"))).outcome == "success"
    assert verdict(_run(ok, busy=("salesforce",))).outcome == "retry"
    assert verdict(_run(_summary("hubspot", "error", transient=True))).outcome == "retry"
    mixed = verdict(_run(_summary("hubspot", "error", transient=True), _summary("salesforce", "error")))
    assert mixed.outcome == "fail" and "salesforce: error: salesforce says error" in mixed.message
    assert verdict(_run(_summary("hubspot", "refused"))).outcome == "fail"


def test_a_pause_on_the_run_budget_is_told_from_one_on_the_daily_allocation():
    budget = _run(_summary("hubspot", "paused: quota", code="BUDGET"))
    daily = _run(_summary("hubspot", "paused: quota", code="BUDGET"), _summary("salesforce", "paused: quota",
                                                                                 code="API_RESERVE"))
    assert (pause_kind(budget), pause_kind(daily), pause_kind(_run(_summary("hubspot", "ok")))) == \
        ("budget", "quota", None)
    assert run_tags(daily, 2, 0) == {"leadsync/status": "paused", "leadsync/pause": "quota",
                                     "leadsync/held_failures": "2", "leadsync/identity_conflicts": "0",
                                     "leadsync/attention": "held_failures,quota"}
