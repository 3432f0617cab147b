"""Contacts scored per second, 20 engagements each, one core, default model.

Inputs are the sandbox's synthetic people (histories padded or trimmed to 20
engagements), built before the clock starts; prints one JSON object.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapping.model import Contact, Engagement  # noqa: E402
from scoring import default_model, score  # noqa: E402
from tests.scoring.seeded import seeded  # noqa: E402

ANCHOR = datetime(2026, 11, 22, tzinfo=timezone.utc)
PER_CONTACT = 20


def _workload(count: int) -> list[tuple[Contact, list[Engagement]]]:
    """Seeded contacts whose histories are cycled or cut to exactly PER_CONTACT engagements."""
    out = []
    for _, contact, engagements in seeded(7, count, ANCHOR):
        if engagements:
            out.append((contact, [engagements[i % len(engagements)] for i in range(PER_CONTACT)]))
    return out


def main(count: int = 5000, rounds: int = 7) -> dict[str, object]:
    model = default_model()
    work = _workload(count)
    for contact, engagements in work[:500]:  # warm the model's classification memo
        score(model, contact, engagements, ANCHOR)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for contact, engagements in work:
            score(model, contact, engagements, ANCHOR)
        best = min(best, time.perf_counter() - start)
    return {
        "bench": "scoring",
        "contacts": len(work),
        "engagements_per_contact": PER_CONTACT,
        "contacts_per_s": round(len(work) / best),
        "us_per_contact": round(best / len(work) * 1e6, 2),
        "goal_contacts_per_s": 20000,
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
