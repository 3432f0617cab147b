"""What a scheduled sync does beyond one pass: pick up an edited scoring model, and rescore once a day.

Time decay lowers the score of someone who went quiet, but only a contact that is scored again sees it,
and an incremental pass scores only contacts with new data. So the first sync of each UTC day (scores
move by the day, see `engine.scoring_time`) scores every stored contact again; the day of the last
rescore is kept per CRM in the state, so cron running `sync --once` every 15 minutes gets it too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from scoring import ModelError, ScoringModel
from sync.state import State

log = logging.getLogger("leadsync.sync")


def _key(source: str) -> str:
    return f"rescored:{source}"


def last_rescore(state: State, source: str) -> str | None:
    """The UTC day (ISO) every contact of `source` was last scored again, or None."""
    return state.meta_get(_key(source))


def note_rescore(state: State, source: str, today: date) -> None:
    state.meta_set(_key(source), today.isoformat())


def daily_rescore(state: State, sources: Sequence[str], today: date, forced: bool = False) -> list[str]:
    """Mark every stored contact dirty where today's rescore has not happened yet (or `forced`); the sources
    marked. Marking is the commitment: a run stopped half-way leaves them dirty for the next one."""
    done = []
    for source in sources:
        last = last_rescore(state, source)
        if not forced and last == today.isoformat():
            continue
        with state.tx():
            ids = state.all_contact_ids(source)
            state.mark_dirty(source, ids)
            note_rescore(state, source, today)
        log.info("%s: scoring all %d contacts again (%s; last rescore %s)", source, len(ids),
                 "--rescore" if forced else "time decay, once a day", last or "never")
        done.append(source)
    return done


class ModelWatch:
    """The scoring model a long-running loop uses, loaded again when its file changes.

    A file that no longer loads keeps the last good model in use (said in the log and in `problem`), so
    a typo in an edit never stops the schedule nor scores with half a model."""

    def __init__(self, path: str | None, load: Callable[[str | None], ScoringModel]) -> None:
        self.path = Path(path) if path else None
        self._load = load
        self._seen = self._fingerprint()
        self.model = load(path)
        self.problem: str | None = None

    def _fingerprint(self) -> str | None:
        if self.path is None:
            return None
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as exc:
            return f"unreadable: {exc.strerror}"

    def current(self) -> ScoringModel:
        """The model for this cycle: reloaded (and logged) when the file's content changed since."""
        seen = self._fingerprint()
        if seen == self._seen:
            return self.model
        self._seen = seen
        try:
            self.model = self._load(str(self.path))
        except ModelError as exc:
            self.problem = f"scoring model {self.path} changed but does not load; still using the previous one: {exc}"
            log.error("%s", self.problem)
            return self.model
        self.problem = None
        log.warning("scoring model %s changed: reloaded; this cycle scores with the new model", self.path)
        return self.model
