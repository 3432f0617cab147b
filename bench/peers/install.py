"""One virtual environment per peer under the cache dir, installed from the package index once and reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from peers.catalog import Peer

STAMP = ".leadsync-peer-installed"


def venv_dir(cache: Path, peer: Peer) -> Path:
    return cache / "venvs" / peer.name


def installed(cache: Path, peer: Peer) -> bool:
    """Installed and at the pinned version (the stamp names the spec it was made for)."""
    stamp = venv_dir(cache, peer) / STAMP
    return stamp.exists() and stamp.read_text().strip() == peer.spec and executable(cache, peer).exists()


def executable(cache: Path, peer: Peer) -> Path:
    return venv_dir(cache, peer) / "bin" / peer.executable


def ensure(cache: Path, peer: Peer, log: Path) -> str | None:
    """Install `peer` if needed. None when ready, else the reason it could not be installed."""
    if installed(cache, peer):
        return None
    venv = venv_dir(cache, peer)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(venv)]]
    steps.append([str(python), "-m", "pip", "install", "-q", peer.spec, *peer.extra_requirements])
    with log.open("a") as out:
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log.read_text().strip().splitlines()[-3:]
                return f"could not install: {peer.spec}: pip exited {done.returncode}: {' | '.join(tail)[-400:]}"
    if not executable(cache, peer).exists():
        return f"could not install: {peer.spec} has no {peer.executable} console script"
    (venv / STAMP).write_text(peer.spec + "\n")
    return None
