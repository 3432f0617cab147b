"""Calibration quality on the real X Education leads: 5-fold CV ROC AUC, top-decile precision, rules.

Reads the data by path (never copied into the repo); prints one JSON object.
Reference (README of the data): logistic regression 0.838, gradient boosting 0.865.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring.calibrate import calibrate_csv  # noqa: E402

DATA = Path("/work/shared/data/leads_x_education.csv")
FEATURES = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit", "Last Activity",
            "Lead Origin", "Lead Source"]


def main(path: Path = DATA) -> dict[str, object]:
    if not path.exists():
        return {"bench": "calibration", "skipped": f"{path} not found"}
    start = time.perf_counter()
    result = calibrate_csv(path, "Converted", FEATURES, folds=5, max_rules=40, seed=0)
    return {"bench": "calibration", "data": path.name, "label": "Converted", **result.to_dict(),
            "goal_auc": 0.84, "max_rules": 40, "seconds": round(time.perf_counter() - start, 2)}


if __name__ == "__main__":
    print(json.dumps(main()))
