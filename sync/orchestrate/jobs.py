"""The Dagster ops and jobs: each runs `run_tenant` (the engine `leadsync backfill` / `sync --once` run)
for one tenant and reports the result; nothing else. Importing this module needs the `dagster` extra.

Failures: a transient one raises `Failure(allow_retries=True)`, which the op's retry policy retries; one a
person must fix raises `Failure(allow_retries=False)`, which bypasses it. Run-level retries (the instance's
`run_retries`) are for a run worker that died, not for an op that failed (`retry_on_asset_or_op_failure:
false` in deploy/dagster/dagster.yaml), so a refusal is never retried by either.
"""

# No `from __future__ import annotations` here: Dagster reads the ops' config classes from real annotations.
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from sync.orchestrate.report import (
    FLEET,
    KIND_TAG,
    SINCE_TAG,
    STATUS_TAG,
    TENANT_TAG,
    Verdict,
    exception_verdict,
    metadata,
    run_tags,
    verdict,
)
from sync.persons import conflicts
from sync.runner import TenantRun, run_tenant
from sync.state import State
from sync.tenants import Tenant, TenantsFile

#: Transient failures: three more tries, a minute apart and doubling, with jitter so tenants spread out.
DEFAULT_RETRY = dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class SyncOptions(dg.Config):
    """What `leadsync sync --once` takes besides the tenant."""

    yes: bool = False  # apply a run the move guard would refuse (too many stage moves at once)
    new_state: bool = False  # a fresh state meeting a CRM leadsync already wrote to: adopt it (sync/adopt.py)


class BackfillOptions(SyncOptions):
    """What `leadsync backfill` takes besides the tenant."""

    since: str | None = None  # only records changed since (ISO date or datetime, UTC unless it says)
    resume: bool = False  # continue a stopped or paused backfill from its checkpoint


def job_name(prefix: str, tenant: str) -> str:
    """Dagster names allow letters, digits and `_`; a tenant name may also hold `-`."""
    return f"{prefix}_{tenant.replace('-', '_')}"


def parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise dg.Failure(f"since {text!r}: expected an ISO date or datetime, e.g. 2026-01-31",
                         allow_retries=False) from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def held_and_conflicts(tenant: Tenant) -> tuple[int, int]:
    """From the tenant's state after its run: changes held after every attempt, identity conflicts."""
    state = State(tenant.settings.state_url, tenant=tenant.name)
    try:
        held = sum(1 for f in state.failures() if f["status"] == "held")
        return held, len(conflicts(state))
    finally:
        state.close()


def failure(why: Verdict, meta: dict[str, Any] | None = None) -> dg.Failure:
    return dg.Failure(description=why.message, metadata=meta or {}, allow_retries=why.outcome == "retry")


def execute(context: dg.OpExecutionContext, tenants: TenantsFile, name: str, kind: str,
            options: SyncOptions, tag_run: bool = True) -> dg.Output:
    """Run one tenant and report it: the body every leadsync op shares. `tag_run`: the run is this tenant's
    alone, so its outcome goes on the run's tags (not in the every-tenant backfill, whose steps share one)."""
    try:
        tenant = tenants.get(name)
    except ValueError as exc:  # SettingsError: unknown tenant or its configuration, naming the key
        if tag_run:
            context.instance.add_run_tags(context.run_id, {STATUS_TAG: "error"})
        raise failure(Verdict("fail", str(exc))) from None
    since, resume = None, False
    if isinstance(options, BackfillOptions):
        since = parse_since(options.since or context.run.tags.get(SINCE_TAG))
        # A retry (of this op, or a re-execution of a run whose worker died) continues from the checkpoints;
        # one with `since` starts again, as a resume would drop `since` if nothing was checkpointed yet.
        again = context.retry_number > 0 or context.run.parent_run_id is not None
        resume = options.resume or (again and since is None)
    context.log.info(f"leadsync {kind} for tenant {name}" + (f" since {since.isoformat()}" if since else ""))
    try:
        ran: TenantRun = run_tenant(tenant, kind, since=since, resume=resume, new_state=options.new_state,
                                    yes=options.yes)
        held, clashes = held_and_conflicts(tenant)
    except Exception as exc:
        raise failure(exception_verdict(exc)) from exc
    meta = metadata(ran, held, clashes)
    if tag_run:
        context.instance.add_run_tags(context.run_id, run_tags(ran, held, clashes))
    why = verdict(ran)
    if not why.success:
        raise failure(why, meta)
    return dg.Output(None, metadata=meta)


def tenant_op(tenants: TenantsFile, name: str, kind: str, retry: dg.RetryPolicy,
              tag_run: bool = True) -> dg.OpDefinition:
    """An op for one tenant (its scheduled sync, its step in the every-tenant backfill)."""
    decorate = dg.op(name=f"run_{job_name(kind, name)}", retry_policy=retry, tags={TENANT_TAG: name},
                     description=f"leadsync {kind} for tenant {name}")
    if kind == "backfill":
        def backfill(context: dg.OpExecutionContext, config: BackfillOptions) -> dg.Output:
            return execute(context, tenants, name, kind, config, tag_run)

        return decorate(backfill)

    def sync(context: dg.OpExecutionContext, config: SyncOptions) -> dg.Output:
        return execute(context, tenants, name, kind, config, tag_run)

    return decorate(sync)


def sync_job(tenants: TenantsFile, name: str, retry: dg.RetryPolicy) -> dg.JobDefinition:
    op = tenant_op(tenants, name, "sync", retry)

    @dg.job(name=job_name("sync", name), tags={TENANT_TAG: name, KIND_TAG: "sync"},
            executor_def=dg.in_process_executor, description=f"leadsync sync --once for tenant {name}")
    def _job() -> None:
        op()

    return _job


def backfill_job(tenants: TenantsFile, retry: dg.RetryPolicy) -> dg.JobDefinition:
    """One job, partitioned by tenant: a 200-tenant backfill is a Dagster backfill over its partitions, with
    per-partition status and re-execution. `since` is run config (or the `leadsync/since` tag of a Dagster
    backfill); there is no time-window dimension, as the engine takes a start and no end."""
    names = tenants.names

    @dg.static_partitioned_config(partition_keys=names, tags_for_partition_key_fn=lambda key: {TENANT_TAG: key})
    def per_tenant(_key: str) -> dict[str, Any]:
        return {}

    @dg.op(name="backfill_tenant", retry_policy=retry, description="leadsync backfill for the partition's tenant")
    def backfill_tenant(context: dg.OpExecutionContext, config: BackfillOptions) -> dg.Output:
        return execute(context, tenants, context.partition_key, "backfill", config)

    @dg.job(name="backfill_tenants", config=per_tenant, tags={KIND_TAG: "backfill"},
            executor_def=dg.in_process_executor, description=backfill_job.__doc__)
    def _job() -> None:
        backfill_tenant()

    return _job


def fleet_job(tenants: TenantsFile, retry: dg.RetryPolicy, max_concurrent: int) -> dg.JobDefinition:
    """Every tenant's backfill as one run, one step per tenant, `max_concurrent` at a time in processes of
    their own (Dagster's multiprocess executor): a first onboarding. One tenant's step failing fails it
    alone; a tenant another run is writing is `busy` (its writer lock) and retried."""
    ops = [tenant_op(tenants, name, "backfill", retry, tag_run=False) for name in tenants.names]

    @dg.job(name="backfill_all_tenants", tags={TENANT_TAG: FLEET, KIND_TAG: "backfill"},
            executor_def=dg.multiprocess_executor, config={"execution": {"config": {"max_concurrent": max_concurrent}}},
            description=fleet_job.__doc__)
    def _job() -> None:
        for op in ops:
            op()

    return _job
