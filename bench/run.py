"""Run every bench/bench_*.py, each in its own process; collect their JSON into bench/results/.

Each benchmark prints one JSON object as its last stdout line. Pass names to run a subset:
`python bench/run.py scoring sync`. `bench_peers.py` installs other tools and `bench_tenants.py` runs 20
sandboxes through Dagster: each runs only by name (`make bench-peers`, `make bench-tenants`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    else:
        scripts = [s for s in scripts if s.stem not in ("bench_peers", "bench_tenants")]
    combined, failed = {}, []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=HERE.parent)
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        if proc.returncode != 0 or not lines:
            failed.append(name)
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        result = json.loads(lines[-1])
        result["bench_wall_s"] = round(time.perf_counter() - started, 2)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        combined[name] = result
        print(json.dumps({name: result}, sort_keys=True), flush=True)
    (RESULTS / "all.json").write_text(json.dumps(combined, indent=2, sort_keys=True) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
