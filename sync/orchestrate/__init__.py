"""leadsync under an orchestrator (Dagster, the `leadsync[dagster]` extra): many tenants, one engine.

`report` and `watch` are plain Python (what a run reports, what needs a person or a re-launch) and import
no Dagster; `jobs` and `definitions` turn them into Dagster ops, jobs, schedules and a sensor. The module
`dagster dev -m sync.dagster_defs` loads is `sync/dagster_defs.py`.
"""
