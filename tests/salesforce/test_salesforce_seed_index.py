"""The seeded org's indexes: built in bulk (sorted runs, numpy), they must equal what per-row inserts give."""

from __future__ import annotations

from sandbox import bulk
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.data import Prepared, SeedLoader, default_context, job
from sandbox.salesforce.schema import build_schema
from sandbox.salesforce.store import Store
from tests.salesforce.conftest import ANCHOR


def test_seeded_stamp_index_is_the_sorted_stamp_id_pairs() -> None:
    emu = SalesforceEmulator(seed=3, contacts=1500, anchor=ANCHOR)
    for name, table in emu.store.tables.items():
        expected = sorted((row["SystemModstamp"], record_id) for record_id, row in table.rows.items())
        assert table.by_stamp == expected, name
    assert emu.store.last_stamp == max(t.by_stamp[-1][0] for t in emu.store.tables.values() if t.by_stamp)


def test_shared_pass_rows_equal_the_orgs_own_seeding() -> None:
    """Rows made ahead (as `start_sandbox` does) and placed while streaming give the very same org."""
    own = SalesforceEmulator(seed=4, contacts=800, anchor=ANCHOR).store
    context = default_context(build_schema(), ANCHOR, 4)
    chunks = (part for (part,) in bulk.chunks(4, 800, ANCHOR, [job(context)]))
    store = Store(build_schema(), lambda: ANCHOR)
    SeedLoader(store, ANCHOR).load(4, 800, Prepared(context, chunks))
    for name, table in own.tables.items():
        if name == "EmailMessage":  # derived by the emulator after its seed, not by the loader
            continue
        assert store.tables[name].rows == table.rows, name
        assert store.tables[name].by_stamp == table.by_stamp, name
