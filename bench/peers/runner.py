"""Run one peer command against the sandbox: records per stream from its stdout, the state it emitted, and
the child's wall time, CPU and peak RSS (wait4 rusage)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

TIMEOUT_S = 1200


@dataclass
class Outcome:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    records: Counter[str] = field(default_factory=Counter)
    singer_state: Any = None  # the last STATE value (Singer)
    airbyte_states: dict[str, Any] = field(default_factory=dict)  # last STATE message per stream (Airbyte)
    errors: list[str] = field(default_factory=list)  # Airbyte TRACE errors, Singer/Airbyte fatal log lines
    stderr_tail: str = ""
    timed_out: bool = False
    stdout: bytearray | None = None  # every stdout line, when asked for (leadsync's one JSON summary)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def _read(stream: Any, out: Outcome) -> None:
    for line in stream:
        if out.stdout is not None:
            out.stdout += line
        if not line.startswith(b"{"):
            continue
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        kind = msg.get("type")
        if kind == "RECORD":
            out.records[msg.get("stream") or (msg.get("record") or {}).get("stream", "?")] += 1
        elif kind == "STATE":
            if "value" in msg:
                out.singer_state = msg["value"]
            else:
                state = msg.get("state") or {}
                desc = (state.get("stream") or {}).get("stream_descriptor") or {}
                out.airbyte_states[desc.get("name") or state.get("type", "LEGACY")] = state
        elif kind == "TRACE" and (msg.get("trace") or {}).get("type") == "ERROR":
            err = msg["trace"]["error"]
            out.errors.append(str(err.get("internal_message") or err.get("message"))[:600])
        elif kind == "LOG" and (msg.get("log") or {}).get("level") in ("FATAL", "ERROR"):
            out.errors.append(str(msg["log"].get("message"))[:600])


def run(argv: list[str], env: dict[str, str], cwd: Path, stderr_path: Path, timeout_s: int = TIMEOUT_S,
        keep_stdout: bool = False) -> Outcome:
    started = time.perf_counter()
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        out = Outcome(0, 0.0, 0.0, 0.0, stdout=bytearray() if keep_stdout else None)
        reader = threading.Thread(target=_read, args=(proc.stdout, out), daemon=True)
        reader.start()
        timer = threading.Timer(timeout_s, _kill, args=(proc, out))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        reader.join(timeout=30)
    out.returncode = os.waitstatus_to_exitcode(status)
    out.wall_s = round(time.perf_counter() - started, 2)
    out.cpu_s = round(usage.ru_utime + usage.ru_stime, 2)
    out.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
    out.stderr_tail = stderr_path.read_text(errors="replace")[-4000:]
    return out


def _kill(proc: subprocess.Popen, out: Outcome) -> None:
    out.timed_out = True
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the peer's own process group only
    except ProcessLookupError:
        pass
