"""The safety net for model changes: a run that would move too many people's stage at once is refused.

A new scoring model (or a rescore) re-decides everyone in one run; a threshold typo can promote a whole
database to MQL and hand sales hundreds of tasks before anyone looked. So such a run is decided once
without writing, and if more than `safety.max_stage_moves_share` of the persons would change stage, it
stops before the first write and says how to preview it (`leadsync plan --model ...`) and how to go on
(`--yes`, or a higher share). Pure: counts in, verdict out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from scoring import ScoringModel
from sync.decide import PersonDecision


def model_fingerprint(model: ScoringModel) -> str:
    """What the model decides, as a short hash: any change to a rule, threshold or list changes it;
    comments, key order and whitespace in the file do not."""
    text = json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Refused(Exception):
    """The run would move more persons at once than the safety setting allows; nothing was written."""


@dataclass(frozen=True)
class MoveGuard:
    """`max_share` of the persons decided may change stage in one model change or rescore; `yes` waives it.
    `preview_hint` is the command that previews the change, named in the refusal."""

    max_share: float = 0.2
    yes: bool = False
    preview_hint: str = "leadsync plan --rescore"

    @property
    def active(self) -> bool:
        return not self.yes and self.max_share < 1.0


@dataclass
class MoveCount:
    """What a dry pass over every person found: who would change stage, and how."""

    persons: int = 0
    moving: int = 0
    stage_changes: dict[str, int] = field(default_factory=dict)
    tasks: int = 0
    handoffs: int = 0

    @property
    def share(self) -> float:
        return self.moving / self.persons if self.persons else 0.0

    def add(self, d: PersonDecision) -> None:
        """One person's decision: they move if a record changes stage or a record is created for them."""
        self.persons += 1
        moves = [p for p in d.plans if p.stage_to is not None and p.set_fields is not None]
        self.moving += bool(moves or d.handoff)
        for p in moves:
            before = p.contact.lifecycle_stage.value if p.contact.lifecycle_stage else "none"
            key = f"{before}->{p.stage_to.value}"  # type: ignore[union-attr]
            self.stage_changes[key] = self.stage_changes.get(key, 0) + 1
        self.tasks += sum(p.task is not None for p in d.plans) + bool(d.handoff and d.handoff.task)
        self.handoffs += d.handoff is not None


def check(guard: MoveGuard, count: MoveCount, why: str) -> None:
    """Raise Refused when the dry pass moves more than the guard allows; `why` says what triggered it
    ("the scoring model changed from X to Y", "--rescore")."""
    if not guard.active or count.moving <= guard.max_share * count.persons:
        return
    raise Refused(refusal_text(guard, count, why))


def refusal_text(guard: MoveGuard, count: MoveCount, why: str) -> str:
    moves = ", ".join(f"{k} {v:,}" for k, v in sorted(count.stage_changes.items())) or "none"
    return (f"refused: {why}; this run would change the stage of {count.moving:,} of {count.persons:,} persons "
            f"at once ({count.share:.0%}, above safety.max_stage_moves_share = {guard.max_share:g}; "
            f"stage changes: {moves}; tasks: {count.tasks:,}; hand-offs: {count.handoffs:,}). Nothing was "
            f"written. Preview it with `{guard.preview_hint}`, then run again with --yes, or raise "
            "[safety] max_stage_moves_share.")

