"""One writer per (tenant, source) at a time.

With SQLite: an OS file lock beside the state database. With PostgreSQL (state
shared between hosts): a session advisory lock in that database. Either way the
lock dies with the process, even by kill -9, so a crashed run never leaves a
stale lock behind. Tenant `default` keeps the names a single-team leadsync used
(`{source}.lock`, key `leadsync:{source}`), so an older process still running
conflicts as it should; another tenant's are `{tenant}--{source}.lock` and
`leadsync:{tenant}:{source}`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from sync.db import DEFAULT_TENANT


class LockBusy(Exception):
    """Another leadsync process is writing to this CRM right now."""


def _what(tenant: str, source: str) -> str:
    """The CRM a lock guards, as error messages name it: the tenant too when it is not the default."""
    return source if tenant == DEFAULT_TENANT else f"{source} of tenant {tenant}"


class SourceLock:
    def __init__(self, directory: str | Path, source: str, tenant: str = DEFAULT_TENANT) -> None:
        name = source if tenant == DEFAULT_TENANT else f"{tenant}--{source}"
        self.path = Path(directory) / f"{name}.lock"
        self.source = source
        self.tenant = tenant
        self._fd: int | None = None

    def __enter__(self) -> SourceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise LockBusy(f"another leadsync run ({self._holder(holder)}) is writing to "
                           f"{_what(self.tenant, self.source)}; try again later") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def _holder(self, recorded: str) -> str:
        """What is known of the holder: its pid once it has written it, else the lock file it holds."""
        if recorded.isdigit():
            return f"pid {recorded}, lock file {self.path}"
        return f"holding {self.path}, which names no pid yet: it has only just started"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock:
    """PostgreSQL session lock keyed by (tenant, source): held by the state's own connection for the run."""

    def __init__(self, state: Any, source: str) -> None:
        self.state = state
        self.source = source
        self.tenant = state.tenant
        name = f"leadsync:{source}" if self.tenant == DEFAULT_TENANT else f"leadsync:{self.tenant}:{source}"
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)

    def __enter__(self) -> AdvisoryLock:
        (got,) = self.state.db.execute("SELECT pg_try_advisory_lock(?)", (self.key,)).fetchone()
        if not got:
            raise LockBusy(f"another leadsync run is writing to {_what(self.tenant, self.source)} "
                           f"(PostgreSQL lock {self.key}); try again later")
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.db.execute("SELECT pg_advisory_unlock(?)", (self.key,))


def writer_lock(state: Any, source: str) -> SourceLock | AdvisoryLock:
    """The lock that fits the state store, for the state's tenant: a file beside SQLite, an advisory lock in
    PostgreSQL."""
    if state.engine == "postgresql":
        return AdvisoryLock(state, source)
    return SourceLock(Path(state.path).parent if state.path != ":memory:" else ".leadsync", source, state.tenant)


def lock_is_free(state: Any, source: str) -> bool:
    """No process holds the state tenant's `source` writer lock right now (taken and released at once to find out).

    On PostgreSQL an advisory lock is re-entrant, so a lock this session holds reads as free.
    """
    try:
        with writer_lock(state, source):
            return True
    except LockBusy:
        return False
