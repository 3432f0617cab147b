"""One writer per (tenant, source) at a time.

An OS file lock beside the state database: the kernel releases it when the
process dies, even by kill -9, so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class LockBusy(Exception):
    """Another leadsync process is writing to this CRM right now."""


class SourceLock:
    def __init__(self, directory: str | Path, source: str) -> None:
        self.path = Path(directory) / f"{source}.lock"
        self.source = source
        self._fd: int | None = None

    def __enter__(self) -> SourceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockBusy(f"another leadsync run (pid {holder}) is writing to {self.source}; try again later") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
