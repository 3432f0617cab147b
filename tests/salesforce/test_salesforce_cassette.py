"""A recorded pull replayed with vcrpy: the cassette is recorded against the emulator when missing.

Matching is on method + path + query (not host or port), so the replay works
whatever port the emulator gets; the Authorization header is never stored.
Delete the cassette to re-record it after changing what the connector requests.
"""

from __future__ import annotations

import threading
from pathlib import Path

import vcr

from connectors.salesforce import SalesforceConnector
from mapping.salesforce import map_page
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import ANCHOR, SESSION, fast_settings

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
CASSETTE = "salesforce_backfill_pull.yaml"

recorder = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="once", filter_headers=["authorization"],
                   match_on=["method", "path", "query"], decode_compressed_response=True)


def test_backfill_pull_replays_from_cassette() -> None:
    emu = SalesforceEmulator(seed=3, contacts=150, anchor=ANCHOR, session_id=SESSION)
    emu.start()  # needed to record; on replay only its CA file is used
    try:
        replaying = (CASSETTES / CASSETTE).exists()
        conn = SalesforceConnector(fast_settings(emu, query_batch_size=200), sleep=lambda s: None)
        with recorder.use_cassette(CASSETTE) as cassette:
            pages = list(conn.pull({}))
        conn.close()
        for stream in ("Lead", "Contact", "CampaignMember", "Task", "Event"):
            got = [r["Id"] for p in pages if p.stream == stream for r in p.records]
            assert sorted(got) == sorted(r["Id"] for r in emu.records(stream)), stream
        assert conn.api_calls == len(cassette.requests) == 5 + len(pages)
        if replaying:
            assert cassette.play_count == conn.api_calls and emu.app.api_calls() == 0
        mapped = [map_page(p) for p in pages]
        assert sum(len(m.contacts) for m in mapped) == len(emu.records("Lead")) + len(emu.records("Contact"))
        text = (CASSETTES / CASSETTE).read_text()
        assert SESSION not in text and "Bearer" not in text
    finally:
        threading.Thread(target=emu.stop, daemon=True).start()
