"""Backtest and point-in-time calibration at 100k people, on the sandbox's seeded history.

The people, their engagement and their real stage dates come straight from the seed (`sandbox.seed` and
`sandbox.history`, as the emulators serve them), so the figure is the replay and the learning themselves,
on one core; reading the same from the state after a backfill is measured by `bench_persons`. Prints one
JSON object: seconds and µs per person for the backtest and the calibration, the held-out AUC and
top-decile precision of the default model against the calibrated one on the later cohort, and the two
models' hand-off figures side by side. Size: BENCH_CONTACTS (default 100,000 people).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring.backtest import Subject, backtest, compare  # noqa: E402
from scoring.calibrate_history import HistorySettings, calibrate_history  # noqa: E402
from scoring.loader import default_model  # noqa: E402
from tests.scoring.seeded import seeded_subjects  # noqa: E402

SEED = 3
ANCHOR = datetime(2026, 12, 1, tzinfo=timezone.utc)


def subjects(count: int) -> list[Subject]:
    return seeded_subjects(SEED, count, ANCHOR)


def _cpu() -> float:
    return time.process_time()


def main() -> dict[str, object]:
    count = int(os.environ.get("BENCH_CONTACTS", "100000"))
    c0 = _cpu()
    people_ = subjects(count)
    built = _cpu() - c0
    start, end = (ANCHOR - timedelta(weeks=26)).date(), ANCHOR.date()
    model = default_model()
    c0 = _cpu()
    base = backtest(model, people_, start, end)
    backtest_s = _cpu() - c0
    c0 = _cpu()
    cal = calibrate_history(model, people_, start, end, HistorySettings(horizon_days=30))
    calibrate_s = _cpu() - c0
    theirs = backtest(cal.model, people_, start, end)
    diff = compare(base, theirs)
    return {
        "bench": "backtest", "people": count, "engagements": sum(len(s.engagements) for s in people_),
        "window": [start.isoformat(), end.isoformat()], "build_subjects_s": round(built, 1),
        "backtest_cpu_s": round(backtest_s, 1), "backtest_us_per_person": round(backtest_s / count * 1e6),
        "calibrate_cpu_s": round(calibrate_s, 1), "calibrate_us_per_person": round(calibrate_s / count * 1e6),
        "calibration": cal.to_dict(),
        "backtest_default": {k: v for k, v in base.figures.items() if k != "sqls_per_week_per_owner"},
        "backtest_calibrated": {k: v for k, v in theirs.figures.items() if k != "sqls_per_week_per_owner"},
        "handoff_moves": dict(diff["moves"]),
    }


if __name__ == "__main__":
    print(json.dumps(main(), default=str))
