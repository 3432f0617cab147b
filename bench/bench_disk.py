"""The state's bytes on disk after backfilling both CRMs: per table, per stored engagement, per contact.

Backfills HubSpot then Salesforce from one seeded sandbox (BENCH_DISK_PEOPLE, default 100,000 people) into a
SQLite state, copies it with VACUUM INTO (free pages would measure SQLite's allocator, not the schema), and sums
SQLite's `dbstat` page sizes per table with its indexes. An engagement's bytes are the engagements table and
its index; a contact's are everything else (snapshots, scores, audit trail, stage history, ledgers, texts and
dictionaries) over the contacts stored. Targets (issue 15): <= 200 B per engagement, <= 1 KB per contact.
BENCH_DISK_KEEP=path keeps the measured copy for inspection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

from bench_sync import run_measured, start_sandbox

ENGAGEMENT_TABLES = {"engagements"}


def table_bytes(path: Path) -> dict[str, int]:
    """Bytes of every table, its indexes (and SQLite's automatic key indexes) counted with it."""
    db = sqlite3.connect(path)
    owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
    out: dict[str, int] = {}
    for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name) or name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
        out[table] = out.get(table, 0) + size
    db.close()
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def main() -> None:
    people = int(os.environ.get("BENCH_DISK_PEOPLE", "100000"))
    proc, info = start_sandbox(people)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state.db"
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{state}", LEADSYNC_HUBSPOT__BURST_LIMIT="1000000")
            for source in ("hubspot", "salesforce"):
                run_measured(["backfill", "--source", source], env)
            packed = Path(tmp) / "vacuumed.db"
            db = sqlite3.connect(state)
            db.execute("VACUUM INTO ?", (str(packed),))
            db.close()
            if keep := os.environ.get("BENCH_DISK_KEEP"):
                Path(keep).write_bytes(packed.read_bytes())
            by_table = table_bytes(packed)
            contacts, engagements = rows(packed, "contacts"), rows(packed, "engagements")
            engagement_bytes = sum(v for k, v in by_table.items() if k in ENGAGEMENT_TABLES)
            contact_bytes = sum(v for k, v in by_table.items() if k not in ENGAGEMENT_TABLES)
            result = {
                "benchmark": "disk", "people": people, "contacts": contacts, "engagements": engagements,
                "audit_rows": rows(packed, "audit"), "state_mb": round(packed.stat().st_size / 2**20, 1),
                "bytes_per_engagement": round(engagement_bytes / max(engagements, 1)),
                "bytes_per_contact": round(contact_bytes / max(contacts, 1)),
                "bytes_per_contact_by_table": {k: round(v / max(contacts, 1)) for k, v in by_table.items()
                                               if k not in ENGAGEMENT_TABLES},
                "targets": {"bytes_per_engagement": 200, "bytes_per_contact": 1024},
            }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
