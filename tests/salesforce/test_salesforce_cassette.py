"""A recorded pull replayed with vcrpy: the cassette is recorded against the emulator when missing.

Matching is on method + path + query (not host or port), so the replay works
whatever port the emulator gets; credentials are never stored (tests/cassettes.py).
Delete the cassette to re-record it after changing what the connector requests, or set
LEADSYNC_RECORD_LIVE=1 with LEADSYNC_SALESFORCE__* to re-record against a real org.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from connectors.salesforce import SalesforceConnector
from connectors.salesforce.connector import STREAMS
from mapping.salesforce import map_page
from sandbox.salesforce import SalesforceEmulator
from tests.cassettes import leaked, recorder, secret_values
from tests.live import live_settings
from tests.salesforce.conftest import ANCHOR, SESSION, fast_settings

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
CASSETTE = "salesforce_backfill_pull.yaml"

def test_backfill_pull_replays_from_cassette() -> None:
    """With LEADSYNC_RECORD_LIVE=1 and LEADSYNC_SALESFORCE__* set, it re-records against that org instead."""
    emu = SalesforceEmulator(seed=3, contacts=150, anchor=ANCHOR, session_id=SESSION)
    emu.start()  # needed to record; on replay only its CA file is used
    try:
        live = live_settings("salesforce")
        replaying = live is None and (CASSETTES / CASSETTE).exists()
        conn = SalesforceConnector(live or fast_settings(emu, query_batch_size=200), sleep=lambda s: None)
        token = conn.transport.sf.session_id  # log in before recording (a re-login inside is filtered too)

        def secrets() -> list[str]:  # checked before the cassette is written: settings, first and current session
            return secret_values(conn.transport.settings, token, conn.transport.sf.session_id)

        with recorder(CASSETTES, secrets).use_cassette(CASSETTE, record_mode="all" if live else "once") as cassette:
            # A real org can be large: live, record only the first page of each stream.
            pages = [next(conn.pull_stream(s, None)) for s in STREAMS] if live else list(conn.pull({}))
        conn.close()
        text = (CASSETTES / CASSETTE).read_text()
        assert leaked(text, secret_values(live or conn.transport.settings, token)) == 0
        assert re.search(r"Bearer [^\s<\"']", text) is None  # no Authorization value (token_type: Bearer is fine)
        if live:
            assert pages and pages[0].records
            return
        for stream in STREAMS:
            got = [r["Id"] for p in pages if p.stream == stream for r in p.records]
            assert sorted(got) == sorted(r["Id"] for r in emu.records(stream)), stream
        # One call per page, plus the email lookups that link Tasks and EmailMessages (one each way here).
        # (The field history streams filter on Field: those are stream pages, not lookups.)
        lookups = [r for r in cassette.requests if "+WHERE+" in r.uri and "History+WHERE+Field+IN" not in r.uri]
        assert len(lookups) == 2
        assert conn.api_calls == len(cassette.requests) == len(pages) + len(lookups)
        if replaying:
            assert cassette.play_count == conn.api_calls and emu.app.api_calls() == 0
        mapped = [map_page(p) for p in pages]
        assert sum(len(m.contacts) for m in mapped) == len(emu.records("Lead")) + len(emu.records("Contact"))
    finally:
        threading.Thread(target=emu.stop, daemon=True).start()
