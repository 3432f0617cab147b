"""Previewing a model change, then applying it: the same counts, and a guard against moving everyone at once.

Both CRMs of the sandbox, through the CLI and the real client libraries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from scoring import DEFAULT_MODEL_PATH
from sync.cli import app
from sync.settings import Settings
from sync.state import State

runner = CliRunner()
COUNTS = ("contacts_scored", "fields_updated", "records_updated", "tasks_created", "records_created",
          "stage_changes", "failed", "skipped")


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output[-3000:]
    return json.loads(result.stdout)


def counts(summary: dict) -> dict:
    return {k: summary[k] for k in COUNTS}


def per_run(result: dict) -> dict:
    return {r["source"]: counts(r) for r in result["runs"]}


def candidate(tmp_path: Path, **changes: str) -> Path:
    """The shipped model with lower MQL and SQL thresholds (and any rule edits), as a new version."""
    text = DEFAULT_MODEL_PATH.read_text(encoding="utf-8").replace('version = "1"', 'version = "2"')
    text = re.sub(r"\[stages\.mql\]\nfit = 20.*\nengagement = 12.*\ntotal = 40.*",
                  "[stages.mql]\nfit = 0\nengagement = 3\ntotal = 5", text)
    text = re.sub(r"\[stages\.sql\]\nfit = 25.*\nengagement = 30.*\ntotal = 65.*",
                  "[stages.sql]\nfit = 10\nengagement = 10\ntotal = 30", text)
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "candidate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def crm_state(sb) -> tuple:
    """Everything leadsync could have written in either CRM."""
    hs = {cid: sb.hubspot.contact(cid) for cid in sb.hubspot.contact_ids()}
    sf = {o: sb.salesforce.records(o) for o in ("Lead", "Contact", "Task")}
    return json.dumps(hs, sort_keys=True, default=str), json.dumps(sf, sort_keys=True, default=str), \
        len(sb.hubspot.tasks())


def test_preview_then_apply_gives_identical_counts(sandbox_env, tmp_path, monkeypatch):
    cli("backfill")
    model = candidate(tmp_path, **{"points = 8\ncap = 30\nreason = \"visited the pricing page\"":
                                   "points = 20\ncap = 40\nreason = \"visited the pricing page\""})
    before = crm_state(sandbox_env)
    plan = cli("plan", "--model", str(model))
    assert crm_state(sandbox_env) == before  # a preview writes nothing to either CRM
    preview = plan["preview"]
    assert preview["model"] == "b2b-saas-default@2"
    assert plan["stage_changes"].get("lead->mql", 0) > 0 and plan["tasks_created"] > 0
    assert preview["persons_moving_stage"] > 0.2 * preview["persons"]
    assert sum(preview["tasks_by_owner"].values()) == plan["tasks_created"]
    assert sum(preview["handoffs"].values()) == plan["records_created"] > 0
    top = preview["most_affected"][0]
    assert top["stage"]["to"] and top["reasons"] and top["score"]["to"] == top["score"]["from"] + top["score"]["change"]
    changed = [c for m in preview["most_affected"] for c in m["reasons_changed"] if c["rule"] == "pricing_page"]
    assert changed and all(c["after"] > c["before"] for c in changed)  # the edited rule shows its new points

    monkeypatch.setenv("LEADSYNC_MODEL_PATH", str(model))
    assert per_run(cli("plan")) == per_run(plan)  # the configured new model: the plan shows it without --model
    applied = cli("sync", "--once", "--rescore", "--yes")
    assert per_run(applied) == per_run(plan)
    assert counts(applied) == counts(plan)
    assert crm_state(sandbox_env) != before
    again = cli("sync", "--once")
    assert (again["fields_updated"], again["tasks_created"], again["records_created"]) == (0, 0, 0)


def test_a_model_change_moving_too_many_is_refused_until_yes(sandbox_env, tmp_path, monkeypatch):
    cli("backfill")
    model = candidate(tmp_path)
    monkeypatch.setenv("LEADSYNC_MODEL_PATH", str(model))
    before = crm_state(sandbox_env)
    state = State(Settings().state_url)
    dirty = {src: state.dirty(src) for src in ("hubspot", "salesforce")}
    state.close()
    refused = cli("sync", "--once", code=2)  # no --rescore needed: a changed model re-decides everyone
    assert crm_state(sandbox_env) == before
    state = State(Settings().state_url)
    for src in dirty:  # nobody left queued for a later run without the guard: only what the pull itself found
        assert set(dirty[src]) <= set(state.dirty(src)) and len(state.dirty(src)) < len(state.all_contact_ids(src)) / 4
    state.close()
    assert {r["status"] for r in refused["runs"]} == {"refused"}
    assert (refused["fields_updated"], refused["tasks_created"], refused["records_created"]) == (0, 0, 0)
    message = refused["runs"][0]["message"]
    assert f"leadsync plan --model {model}" in message and "--yes" in message
    assert "b2b-saas-default@1 to b2b-saas-default@2" in message
    moving = int(re.search(r"stage of (\d+) of (\d+) persons", message).group(1))
    assert moving == cli("plan")["preview"]["persons_moving_stage"]
    state = State(Settings().state_url)
    assert state.model_fingerprint("hubspot")["label"] == "b2b-saas-default@1"  # still the applied one
    state.close()
    cli("backfill", code=2)  # a backfill is held to the same rule

    monkeypatch.setenv("LEADSYNC_SAFETY__MAX_STAGE_MOVES_SHARE", "0.9")  # or the setting raised
    applied = cli("sync", "--once")
    assert {r["status"] for r in applied["runs"]} == {"ok"} and applied["tasks_created"] > 0
    state = State(Settings().state_url)
    assert state.model_fingerprint("salesforce")["label"] == "b2b-saas-default@2"
    state.close()
    monkeypatch.delenv("LEADSYNC_SAFETY__MAX_STAGE_MOVES_SHARE")
    rescore = cli("sync", "--once", "--rescore")  # same model again: nobody moves, nothing refused
    assert rescore["fields_updated"] == 0 and {r["status"] for r in rescore["runs"]} == {"ok"}


def test_yes_applies_and_plan_human_output_names_the_movers(sandbox_env, tmp_path, monkeypatch):
    cli("backfill", "--source", "hubspot")
    model = candidate(tmp_path)
    shown = runner.invoke(app, ["plan", "--source", "hubspot", "--model", str(model)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "would change stage" in shown.output and "most affected" in shown.output
    assert "max_stage_moves_share" in shown.output
    monkeypatch.setenv("LEADSYNC_MODEL_PATH", str(model))
    cli("sync", "--once", "--source", "hubspot", code=2)
    applied = cli("sync", "--once", "--source", "hubspot", "--yes")
    assert applied["runs"][0]["status"] == "ok" and applied["stage_changes"]


def test_the_crm_reason_field_shows_the_negatives_too(sandbox_env):
    cli("backfill")
    written = [sandbox_env.hubspot.contact(cid) for cid in sandbox_env.hubspot.contact_ids()]
    negative = [p for p in written if p.get("leadsync_score") and int(p["leadsync_score"]) < 0]
    assert negative
    for p in negative:
        assert re.search(r"(^|; )-\d+ \w", p["leadsync_reason"]), p["leadsync_reason"]
    leads = [r for r in sandbox_env.salesforce.records("Lead") if r.get("LeadSync_Reason__c")]
    assert leads and all(len(r["LeadSync_Reason__c"]) <= 255 for r in leads)
    assert any(re.search(r"(^|; )-\d+ \w", r["LeadSync_Reason__c"]) for r in leads)


def test_the_fingerprint_follows_rules_not_layout():
    from scoring import loads_model
    from sync.guard import MoveCount, MoveGuard, Refused, check, model_fingerprint

    text = DEFAULT_MODEL_PATH.read_text(encoding="utf-8")
    same = "\n".join(line.split("  #")[0].rstrip() for line in text.splitlines() if not line.startswith("#"))
    assert model_fingerprint(loads_model(same)) == model_fingerprint(loads_model(text))
    edited = text.replace("points = 25\nreason = \"C-level title\"", "points = 26\nreason = \"C-level title\"")
    assert model_fingerprint(loads_model(edited)) != model_fingerprint(loads_model(text))
    check(MoveGuard(0.2), MoveCount(persons=10, moving=2), "--rescore")  # at the share: allowed
    check(MoveGuard(0.2, yes=True), MoveCount(persons=10, moving=9), "--rescore")
    check(MoveGuard(1.0), MoveCount(persons=10, moving=10), "--rescore")
    try:
        check(MoveGuard(0.2, preview_hint="leadsync plan --model m.toml"), MoveCount(10, 3, {"lead->mql": 3}), "x")
    except Refused as exc:
        assert "3 of 10 persons" in str(exc) and "`leadsync plan --model m.toml`" in str(exc)
    else:
        raise AssertionError("3 of 10 is above 0.2 and was not refused")
