"""Previewing a model change, against the sandbox: what `plan --model` costs, what the guard's dry pass costs,
and whether applying the model makes exactly the counts the preview showed.

Both CRMs as one run: backfill with the shipped model, then a candidate (lower thresholds, more points for
the pricing page) is previewed (`plan --model`), refused by the guard (`sync --once`, exit 2), and applied
(`sync --once --yes`). Size: BENCH_CONTACTS (default 10,000 people). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_sync import LEADSYNC, ROOT, run_measured, start_sandbox

COUNTS = ("contacts_scored", "fields_updated", "records_updated", "tasks_created", "records_created",
          "stage_changes")


def candidate(path: Path) -> Path:
    text = (ROOT / "scoring" / "default_model.toml").read_text(encoding="utf-8").replace('version = "1"', 'version = "2"')
    text = re.sub(r"\[stages\.mql\]\nfit = 20.*\nengagement = 12.*\ntotal = 40.*",
                  "[stages.mql]\nfit = 0\nengagement = 3\ntotal = 5", text)
    text = re.sub(r"\[stages\.sql\]\nfit = 25.*\nengagement = 30.*\ntotal = 65.*",
                  "[stages.sql]\nfit = 10\nengagement = 10\ntotal = 30", text)
    text = text.replace('points = 8\ncap = 30\nreason = "visited the pricing page"',
                        'points = 20\ncap = 40\nreason = "visited the pricing page"')
    path.write_text(text, encoding="utf-8")
    return path


def refused_run(args: list[str], env: dict[str, str]) -> dict:
    """A run expected to be refused (exit 2), timed."""
    started = time.perf_counter()
    proc = subprocess.run([*LEADSYNC, *args, "--json"], env=env, capture_output=True, cwd=ROOT)
    if proc.returncode != 2:
        raise SystemExit(f"{args}: expected exit 2, got {proc.returncode}: {proc.stdout[-2000:]!r}")
    result = json.loads(proc.stdout)
    result["_wall_s"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    n = int(os.environ.get("BENCH_CONTACTS", "10000"))
    proc, info = start_sandbox(n)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{tmp}/state.db",
                       LEADSYNC_HUBSPOT__BURST_LIMIT="1000000")
            backfill = run_measured(["backfill"], env)
            model = candidate(Path(tmp) / "candidate.toml")
            plan = run_measured(["plan", "--model", str(model)], env)
            env["LEADSYNC_MODEL_PATH"] = str(model)
            refused = refused_run(["sync", "--once"], env)
            applied = run_measured(["sync", "--once", "--yes"], env)
            preview = plan["preview"]
            print(json.dumps({
                "benchmark": "preview", "people": n,
                "backfill": {"wall_s": backfill["_wall_s"], "cpu_s": backfill["_cpu_s"],
                             "api_calls": backfill["api_calls"]},
                "plan_model": {"wall_s": plan["_wall_s"], "cpu_s": plan["_cpu_s"], "api_calls": plan["api_calls"],
                               "peak_rss_mb": plan["_peak_rss_mb"], "persons": preview["persons"],
                               "persons_moving_stage": preview["persons_moving_stage"],
                               "share_moving_stage": preview["share_moving_stage"],
                               **{k: plan[k] for k in COUNTS}},
                "guard_refusal": {"wall_s": refused["_wall_s"], "api_calls": refused["api_calls"],
                                  "statuses": sorted({r["status"] for r in refused["runs"]}),
                                  "fields_updated": refused["fields_updated"]},
                "apply_yes": {"wall_s": applied["_wall_s"], "cpu_s": applied["_cpu_s"],
                              "api_calls": applied["api_calls"], **{k: applied[k] for k in COUNTS}},
                "counts_equal": all(plan[k] == applied[k] for k in COUNTS),
            }))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
