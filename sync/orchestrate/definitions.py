"""`build_definitions(tenants_file)`: every tenant's jobs, schedules and the watch sensor as one Dagster
code location. A tenant whose configuration is unusable still gets its jobs, which fail naming the key at
fault; its neighbours are untouched and the code location always loads.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import dagster as dg

from sync.orchestrate import watch
from sync.orchestrate.jobs import DEFAULT_RETRY, backfill_job, fleet_job, job_name, sync_job
from sync.orchestrate.report import KIND_TAG, TENANT_TAG
from sync.tenants import TenantsFile

#: Runs (or every-tenant backfill steps) at once on one machine: see deploy/dagster/dagster.yaml.
MAX_CONCURRENT = 4
_DAGSTER_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def split_names(tenants: TenantsFile) -> tuple[TenantsFile, dict[str, str]]:
    """The tenants that get jobs (usable, or failing on their configuration), and the errors of those whose
    names cannot name a Dagster job or collide with another's once `-` is `_` (the sensor reports them)."""
    unnamed: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in tenants.names:
        key = job_name("sync", name)
        if not _DAGSTER_NAME.match(key):
            unnamed[name] = tenants.errors.get(name) or "the name cannot name a Dagster job"
        elif key in seen:
            unnamed[name] = f"its Dagster job name {key} is also tenant {seen[key]!r}'s: rename one of them"
        else:
            seen[key] = name
    kept = replace(tenants, tenants={n: t for n, t in tenants.tenants.items() if n not in unnamed},
                   errors={n: e for n, e in tenants.errors.items() if n not in unnamed})
    return kept, unnamed


def build_definitions(tenants_file: TenantsFile, *, retry: dg.RetryPolicy = DEFAULT_RETRY,
                      max_concurrent: int = MAX_CONCURRENT,
                      quota_recheck: timedelta = watch.QUOTA_RECHECK) -> dg.Definitions:
    tenants, unnamed = split_names(tenants_file)
    syncs = {n: sync_job(tenants, n, retry) for n in tenants.names}
    backfill = backfill_job(tenants, retry)
    schedules = [dg.ScheduleDefinition(name=f"{job_name('sync', name)}_schedule", job=syncs[name],
                                       cron_schedule=tenant.schedule, execution_timezone="UTC",
                                       default_status=dg.DefaultScheduleStatus.RUNNING)
                 for name, tenant in sorted(tenants.tenants.items())]
    jobs: list[dg.JobDefinition] = [*syncs.values(), backfill]
    if tenants.names:
        jobs.append(fleet_job(tenants, retry, max_concurrent))
    sensor = watch_sensor(tenants.names, {**tenants.errors, **unnamed}, syncs, backfill, quota_recheck)
    return dg.Definitions(jobs=jobs, schedules=schedules, sensors=[sensor])


def watch_sensor(names: list[str], bad: dict[str, str], syncs: dict[str, dg.JobDefinition],
                 backfill: dg.JobDefinition, recheck: timedelta) -> dg.SensorDefinition:
    """Re-launches runs paused on quota once their window allows (one launch per pause: the run key), and
    names what a person should look at: bad configurations, failed runs, held failures, identity conflicts."""

    @dg.sensor(name="leadsync_watch", jobs=[*syncs.values(), backfill], minimum_interval_seconds=120,
               default_status=dg.DefaultSensorStatus.RUNNING, description=watch_sensor.__doc__)
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        latest = [run for name in names if (run := latest_finished(context.instance, name))]
        resumes, lines = watch.review(latest, bad, datetime.now(timezone.utc), recheck)
        for line in lines:
            context.log.warning(line)
        requests = [resume_request(r, syncs, backfill) for r in resumes if r.tenant in syncs]
        if not requests:
            return dg.SkipReason("; ".join(lines) if lines else "nothing to re-launch or look at")
        return dg.SensorResult(run_requests=requests)

    return _sensor


def latest_finished(instance: dg.DagsterInstance, tenant: str) -> watch.Finished | None:
    """The tenant's newest run, if it has finished (a queued or running one means nothing is due)."""
    records = instance.get_run_records(dg.RunsFilter(tags={TENANT_TAG: tenant}), limit=1)
    if not records:
        return None
    record = records[0]
    run = record.dagster_run
    if run.status not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
        return None
    ended = record.end_time or record.update_timestamp.timestamp()
    return watch.Finished(tenant, run.run_id, run.status == dg.DagsterRunStatus.SUCCESS,
                          datetime.fromtimestamp(ended, timezone.utc), dict(run.tags))


def resume_request(due: watch.Resume, syncs: dict[str, dg.JobDefinition], backfill: dg.JobDefinition
                   ) -> dg.RunRequest:
    tags = {TENANT_TAG: due.tenant, KIND_TAG: due.kind, "leadsync/resumes": due.run_key.removeprefix("resume-")}
    if due.kind == "backfill":
        return dg.RunRequest(run_key=due.run_key, job_name=backfill.name, partition_key=due.tenant, tags=tags,
                             run_config={"ops": {"backfill_tenant": {"config": {"resume": True}}}})
    return dg.RunRequest(run_key=due.run_key, job_name=syncs[due.tenant].name, tags=tags)
