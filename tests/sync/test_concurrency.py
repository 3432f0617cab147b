"""Two leadsync processes at once against one CRM: one writes, the other stands aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sandbox.run import start_sandbox


def test_second_writer_is_refused_and_nothing_is_doubled(tmp_path):
    sb = start_sandbox(contacts=300, seed=5)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
        env.update(sb.env(), LEADSYNC_STATE_URL=f"sqlite:///{tmp_path}/state.db")
        cmd = [sys.executable, "-m", "sync.cli", "backfill", "--source", "hubspot", "--json"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        tasks = sb.hubspot.tasks()
        keys = [t["properties"].get("leadsync_key") for t in tasks]
        assert len(keys) == len(set(keys)) > 0  # whatever the interleaving: one task per hand-off
        if codes == [0, 3]:  # they overlapped: the second saw the lock and said so
            refused = next(err for (_, err), p in zip(outs, procs, strict=True) if p.returncode == 3)
            assert b"another leadsync run" in refused
        else:  # one finished before the other started: the second run was a no-op re-plan
            assert codes == [0, 0]
            second = [json.loads(o) for o, _ in outs]
            assert min(s["tasks_created"] for s in second) == 0
    finally:
        sb.stop()
