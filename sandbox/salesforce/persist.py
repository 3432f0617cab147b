"""The emulator's org on disk: every table's rows and id counters, the org clock and the API usage.

A restarted sandbox keeps what a test (or a demo) wrote. The file is JSON,
rewritten whole and atomically (temporary file + rename), so a crash mid-save
leaves the previous state, never half a file. Datetimes and dates are tagged
so they come back as the types the store holds.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sandbox.salesforce.store import Store

FORMAT = 1


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    raise TypeError(f"cannot persist {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$d" in obj:
            return date.fromisoformat(obj["$d"])
    return obj


def save(store: Store, api_usage: int, path: str) -> None:
    """Write the whole org to `path` atomically."""
    state = {
        "format": FORMAT,
        "last_stamp": store.last_stamp,
        "api_usage": api_usage,
        "tables": {name: {"counter": t.counter, "rows": list(t.rows.values())} for name, t in store.tables.items()},
    }
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(state, default=_encode, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, target)


def load(store: Store, path: str) -> int:
    """Fill an empty store from `path`; returns the saved API usage.

    Rows keep only the fields this org's schema has (an org built without
    leadsync's fields drops them, as field deletion would).
    """
    state = json.loads(Path(path).read_text(encoding="utf-8"), object_hook=_decode)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown sandbox state format {state.get('format')!r}")
    for name, saved in state["tables"].items():
        table = store.tables.get(name)
        if table is None:
            continue
        fields = {**table.sobject.fields, "SystemModstamp": None}  # history rows keep their index stamp
        for row in saved["rows"]:
            store.load(name, {**dict.fromkeys(fields), **{k: v for k, v in row.items() if k in fields}})
        table.counter = saved["counter"]
    store.last_stamp = max(store.last_stamp, state["last_stamp"])
    return int(state.get("api_usage", 0))
