"""Runs that decide everyone: a model change or `--rescore`, held to the safety guard.

The steps `sync.coordinator.Sync` takes when every stored record is to be decided again: why (a model other
than the one a CRM's records were last decided with, or --rescore), marking them, the guard's dry pass,
and keeping the applied model's fingerprint for the next run to compare against.
"""

from __future__ import annotations

from typing import Any

from connectors.base import chunks
from sync.engine import Stopped
from sync.guard import MoveCount, Refused, check


class WholeRuns:
    """Mixed into Sync (which provides state, engines, model, summaries, kind, guard and `_decisions`)."""

    state: Any
    model: Any
    fingerprint: str
    kind: str
    rescore: bool
    guard: Any
    summaries: dict[str, Any]
    batch_size: int
    stop: Any

    def _everyone(self) -> str:
        """Why this run decides every stored record ("" when it does not): --rescore, or a model other than
        the one the last applied run of a CRM used (scores of one model only, never a mix)."""
        changed = []
        for src in self._live():
            last = self.state.model_fingerprint(src)
            if last and last["fingerprint"] != self.fingerprint:
                changed.append(last["label"])
        if changed:
            return (f"the scoring model changed from {', '.join(sorted(set(changed)))} to {self.model.label} "
                    "since the last run")
        return "--rescore" if self.rescore else ""

    def _mark_everyone(self, why: str) -> None:
        """Every record dirty (committed before the first write: a killed rescore is resumed by the next run),
        except those an undo holds; then the guard. A refused run leaves the dirty set as it found it."""
        before = {src: set(self.state.dirty(src)) for src in self._live()}
        with self.state.tx():
            for src in before:
                self.state.mark_dirty(src, self.state.all_contact_ids(src))
        for src, e in self._live().items():
            e._keep_undone(self.summaries[src])
        try:
            self._check_guard(why)
        except Refused:
            with self.state.tx():
                for src, ids in before.items():
                    self.state.clear_dirty(src, sorted(set(self.state.dirty(src)) - ids))
            raise

    def _check_guard(self, why: str) -> None:
        """A dry pass over every person of the run before anything is written; Refused when too many move."""
        if self.guard is None or not self.guard.active:
            return
        count = MoveCount()
        keys = [f"{src}:{rid}" for src in self._live() for rid in self.state.dirty(src)]
        seen: set[str] = set()
        for part in chunks(keys, self.batch_size):
            for person, _, d in self._decisions([k for k in part if k not in seen]):
                seen.update(person.records)
                count.add(d)
            if self.stop.is_set():
                raise Stopped()
        check(self.guard, count, why)

    def _keep_fingerprint(self) -> None:
        """The model a CRM's records were last decided with: stored once a run applied it in full."""
        if self.kind == "plan":
            return
        with self.state.tx():
            for src, s in self.summaries.items():
                if s.status in ("ok", "ok with failures"):
                    self.state.set_model_fingerprint(src, self.fingerprint, self.model.label, s.run_id)
