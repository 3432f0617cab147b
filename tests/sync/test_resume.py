"""A stopped backfill (SIGTERM) ends cleanly and `--resume` continues from its checkpoint."""

from __future__ import annotations

import threading

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from sandbox.run import HUBSPOT_TOKEN
from scoring import default_model
from sync.engine import Engine
from sync.state import State


def engine(sb, state, stop=None, on_progress=None) -> Engine:
    conn = HubSpotConnector(HubSpotSettings(access_token=HUBSPOT_TOKEN, base_url=sb.hubspot_url))
    return Engine(state, conn, default_model(), stop=stop, on_progress=on_progress)


def test_stopped_backfill_resumes_without_repulling(sandbox, tmp_path):
    live_ids = sandbox.hubspot.contact_ids()
    contact_pages = -(-len(live_ids) // 100)
    assert contact_pages >= 3

    state = State(f"sqlite:///{tmp_path}/s.db")
    stop = threading.Event()
    pages = []

    def stop_after_two(stage: str, n: int) -> None:
        if stage == "pull":
            pages.append(n)
            if len(pages) == 2:
                stop.set()  # what SIGTERM does: finish the page in hand, then end the run

    first, _ = engine(sandbox, state, stop, stop_after_two).run("backfill")
    assert first.status == "stopped" and first.contacts_pulled == 2 * 100
    assert state.checkpoints("hubspot") and not state.watermarks("hubspot")

    resumed, _ = engine(sandbox, state).run("backfill", resume=True)
    assert resumed.status == "ok"
    assert resumed.streams["contacts"]["pages"] == contact_pages - 2  # only what was left
    assert set(state.contacts("hubspot", live_ids)) == set(live_ids)  # nothing lost across the stop
    # the cursors became watermarks; only the marker that the pull is done stays, for a resume after a kill
    assert state.checkpoints("hubspot") == {"~pull-done": resumed.run_id} and "contacts" in state.watermarks("hubspot")
    assert first.tasks_created == 0 and resumed.tasks_created > 0  # the writes happen once the pull is whole
    assert len(sandbox.hubspot.tasks()) == resumed.tasks_created
