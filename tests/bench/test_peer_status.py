"""The side-by-side bench names why a peer's row is empty: its own error, or a known sandbox gap (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def peers(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from peers import configs, runner, status
    return runner, status, configs


@pytest.mark.parametrize(("error", "gap"), [
    ('{"error":"unsupported_grant_type","error_description":"grant type not supported"}',
     "Salesforce refresh_token grant"),
    ("400 for path: /crm/v3/properties/communications: Unable to infer object type from: communications",
     "HubSpot properties for every standard object type"),
    ("Giving up on request after 5 tries with url ('https://api.hubapi.com/properties/v1/deals/properties',)",
     "legacy deal properties"),
    ("SELECT Id FROM Lead WHERE SystemModstamp >= 2026-12-02T23:16:41.000000Z\\nunexpected token: '.000000Z'",
     "SOQL datetime literals with 6 fractional digits"),
])
def test_issue_18_gaps_are_named(peers, error, gap):
    runner, status, _ = peers
    out = runner.Outcome(1, 1.0, 0.5, 70.0, errors=[error])
    assert status.status_of(out).startswith(f"blocked on sandbox: {gap}")


def test_other_failures_keep_the_peers_own_error_and_success_is_ok(peers):
    runner, status, _ = peers
    failed = runner.Outcome(1, 1.0, 0.5, 70.0, stderr_tail="INFO start\nKeyError: 'results'\nINFO bye\n")
    assert status.status_of(failed) == "failed (run, exit 1): KeyError: 'results'"
    assert status.status_of(runner.Outcome(0, 1.0, 0.5, 70.0)) == "ok"
    assert status.status_of(runner.Outcome(0, 1.0, 0.5, 70.0, timed_out=True)) == "failed: timed out"


def test_singer_catalog_selects_only_the_benchmarked_streams_incrementally(peers):
    _, _, configs = peers
    catalog = {"streams": [
        {"tap_stream_id": "Lead", "metadata": [
            {"breadcrumb": [], "metadata": {"valid-replication-keys": ["LastModifiedDate", "SystemModstamp"]}},
            {"breadcrumb": ["properties", "Email"], "metadata": {"inclusion": "available"}}]},
        {"tap_stream_id": "User", "metadata": [{"breadcrumb": [], "metadata": {}}]}]}
    chosen = configs.select_singer(catalog, ("Lead",))
    lead, user = (s["metadata"] for s in chosen["streams"])
    assert lead[0]["metadata"]["selected"] and lead[1]["metadata"]["selected"]
    assert (lead[0]["metadata"]["replication-key"], lead[0]["metadata"]["replication-method"]) == \
        ("SystemModstamp", "INCREMENTAL")
    assert user[0]["metadata"]["selected"] is False
    with pytest.raises(ValueError, match="no stream"):
        configs.select_singer(catalog, ("Lead", "Opportunity"))
