"""Only a stream's last page settles its watermark at the query's time: every earlier page carries the newest
stamp it has read, so a run killed mid-stream never stores a watermark past records it did not store."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.salesforce.connector import wire_stamp


def test_only_the_last_page_carries_the_query_time(emu, make_connector) -> None:
    conn = make_connector(query_batch_size=200, bulk_threshold=0)
    before = wire_stamp(datetime.now(UTC).replace(microsecond=0))
    pages = list(conn.pull_stream("CampaignMember", None))
    assert len(pages) > 3
    newest = ""
    for page in pages[:-1]:
        newest = max([newest, *(r["SystemModstamp"] for r in page.records)])
        assert page.cursor == newest  # the newest stamp stored so far, never beyond it
    assert max(r["SystemModstamp"] for p in pages for r in p.records) < pages[-1].cursor
    assert before <= pages[-1].cursor <= wire_stamp(datetime.now(UTC))  # the org's Date of the first answer
    # A quiet incremental pull from there reads nothing, in one call.
    calls = conn.api_calls
    again = list(conn.pull_stream("CampaignMember", pages[-1].cursor))
    assert [len(p.records) for p in again] == [0] and conn.api_calls == calls + 1
    assert again[-1].cursor >= pages[-1].cursor
