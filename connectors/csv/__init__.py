"""A connector over CSV exports: contacts and engagement in, changes and tasks out as CSV.

Teams moving from another tool start here, and it loads the public lead datasets.
Rows are passed through as dicts keyed by the export's own column names; the
column mapping lives in the settings and is applied by `mapping.csv`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import ConfigError, RawPage
from connectors.csv.settings import PAGE_SIZE, CsvSettings
from mapping.model import Change, ChangeResult, CreateTask, SetFields

__all__ = ["CsvConnector", "CsvSettings"]


class CsvConnector:
    name: ClassVar[str] = "csv"
    streams: ClassVar[tuple[str, ...]] = ("contacts", "engagements")

    def __init__(self, settings: CsvSettings) -> None:
        if not settings.contacts_path:
            raise ConfigError("csv connector: set LEADSYNC_CSV__CONTACTS_PATH to the contacts export")
        self.settings = settings
        self.api_calls = 0  # no API: kept for the protocol, always 0

    def cursor_at(self, when: datetime) -> str:
        return when.isoformat()  # exports are read whole; kept for the protocol

    def pull(self, watermarks: Mapping[str, str]) -> Iterator[RawPage]:
        """Exports are snapshots: every pull reads them whole; the snapshot diff finds what changed."""
        meta = {"contact_columns": self.settings.contact_columns,
                "engagement_columns": self.settings.engagement_columns,
                "kind_values": self.settings.kind_values}
        written = self._written()
        yield from self._pages("contacts", self.settings.contacts_path, meta, written)
        if self.settings.engagements_path:
            yield from self._pages("engagements", self.settings.engagements_path, meta, {})

    def _written(self) -> dict[str, dict[str, str]]:
        """What earlier runs wrote, by record: the export plus this log is the source's current state."""
        p = Path(self.settings.changes_path)
        out: dict[str, dict[str, str]] = {}
        if p.exists():
            with p.open(newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    out.setdefault(r["record_id"], {})[r["field"]] = r["after"]
        return out

    def _pages(self, stream: str, path: str | None, meta: dict,
               written: dict[str, dict[str, str]]) -> Iterator[RawPage]:
        assert path
        id_column = self.settings.contact_columns.get("id", "id")
        with open(path, newline="", encoding=self.settings.encoding) as fh:
            reader = csv.DictReader(fh, delimiter=self.settings.delimiter)
            page: list[dict[str, str]] = []
            for row_number, row in enumerate(reader, start=2):  # line 1 is the header
                row["_row"] = str(row_number)
                row.update(written.get(row.get(id_column) or f"row-{row_number}", {}))
                page.append(row)
                if len(page) == PAGE_SIZE:
                    yield RawPage(stream, page, None, meta)
                    page = []
            if page:
                yield RawPage(stream, page, None, meta)

    def apply(self, changes: Sequence[Change]) -> list[ChangeResult]:
        sets = [c for c in changes if isinstance(c, SetFields)]
        tasks = [c for c in changes if isinstance(c, CreateTask)]
        if sets:
            self._append(self.settings.changes_path, ["record_id", "object_type", "field", "before", "after"],
                         [[c.record_id, c.object_type, f, fc.before, fc.after] for c in sets for f, fc in c.fields.items()])
        if tasks:
            self._append(self.settings.tasks_path, ["key", "contact_id", "owner_id", "subject", "body", "due"],
                         [[t.idempotency_key, t.contact_id, t.owner_id, t.subject, t.body, t.due.isoformat()]
                          for t in tasks])
        return [ChangeResult(c, ok=True, crm_id=c.key) for c in changes]

    @staticmethod
    def _append(path: str, header: list[str], rows: list[list[object]]) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        new = not p.exists()
        with p.open("a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(header)
            w.writerows(rows)

    def missing_fields(self) -> list[str]:
        return []

    def ensure_fields(self) -> list[str]:
        return []

    def find_task(self, idempotency_key: str) -> str | None:
        return self.find_tasks([idempotency_key]).get(idempotency_key)

    def find_tasks(self, idempotency_keys: Sequence[str]) -> dict[str, str]:
        wanted = set(idempotency_keys)
        p = Path(self.settings.tasks_path)
        if not p.exists():
            return {}
        with p.open(newline="", encoding="utf-8") as fh:
            return {r["key"]: r["key"] for r in csv.DictReader(fh) if r["key"] in wanted}

    def read_fields(self, object_type: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Only leadsync's own writes are readable back: the export itself is never changed."""
        written = self._written()
        return {rid: {f: written.get(rid, {}).get(f) for f in fields} for rid in ids}

    def task_states(self, crm_ids: Sequence[str]) -> dict[str, bool]:
        return {crm_id: False for crm_id in crm_ids}  # a CSV task list has no owner to close it

    def complete_tasks(self, crm_ids: Sequence[str]) -> list[str]:
        return list(crm_ids)  # cannot be done in a file someone else reads: report them all

    def close(self) -> None:
        return None
