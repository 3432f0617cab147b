"""`state_file`: a restarted emulator keeps what was written to it (saved after every write request and on stop)."""

from __future__ import annotations

from pathlib import Path

from connectors.salesforce import SalesforceConnector
from mapping.model import FieldChange, SetFields
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import ANCHOR, SESSION, fast_settings, make_client


def test_restarted_sandbox_reads_back_what_a_test_wrote(tmp_path: Path) -> None:
    state = str(tmp_path / "org.json")
    first = SalesforceEmulator(seed=4, contacts=200, anchor=ANCHOR, session_id=SESSION, state_file=state)
    first.start()
    lead = next(r for r in first.records("Lead") if not r["IsConverted"])
    conn = SalesforceConnector(fast_settings(first), sleep=lambda s: None)
    change = SetFields("salesforce", "Lead", lead["Id"], {"LeadSync_Score__c": FieldChange(None, "77")})
    assert conn.apply([change])[0].ok
    conn.close()
    assert Path(state).exists()  # saved by the write itself, before stop()
    created = make_client(first).Lead.create({"LastName": "Persisted", "Company": "Disk Co"})["id"]
    usage, before = first.api_usage, first.records("Lead")
    first.stop()

    # Another seed: had it re-seeded instead of loading, the ids and values would differ.
    second = SalesforceEmulator(seed=9, contacts=50, anchor=ANCHOR, session_id=SESSION, state_file=state)
    second.start()
    try:
        assert second.records("Lead") == before and second.api_usage == usage
        again = SalesforceConnector(fast_settings(second), sleep=lambda s: None)
        got = again.read_fields("Lead", [lead["Id"], created], ["LeadSync_Score__c", "LastName"])
        assert got[lead["Id"]]["LeadSync_Score__c"] == 77.0 and got[created]["LastName"] == "Persisted"
        # Stamps come back as datetimes: the incremental index still answers, and new ids do not collide.
        newer = [r["Id"] for p in again.pull_stream("Lead", lead["SystemModstamp"]) for r in p.records]
        assert lead["Id"] in newer and created in newer
        fresh = make_client(second).Lead.create({"LastName": "After restart", "Company": "Disk Co"})["id"]
        assert fresh not in {r["Id"] for r in before}
        again.close()
    finally:
        second.stop()
