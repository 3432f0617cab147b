"""What the scorer returns: a Score and the Reasons that add up to it.

Plain frozen dataclasses (no pydantic): tens of thousands are built per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, Literal

from mapping.model import Stage

ReasonKind = Literal["fit", "engagement", "signal", "disqualifier"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why some points were given. `raw_points` is before decay, `decayed_points` after
    decay and before caps; `points` is what counts."""

    rule: str
    kind: ReasonKind
    points: int
    text: str
    evidence: tuple[str, ...] = ()
    raw_points: float = 0.0
    decayed_points: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "points": self.points, "text": self.text,
                "evidence": list(self.evidence), "raw_points": _r(self.raw_points),
                "decayed_points": _r(self.decayed_points)}


@dataclass(frozen=True, slots=True)
class Score:
    """A contact's score on two axes (fit, engagement), the stage it alone implies, and why."""

    fit: int
    engagement: int
    total: int
    stage: Stage
    reasons: tuple[Reason, ...]
    signals: tuple[str, ...]
    disqualified: str | None
    interests: tuple[str, ...]
    idle_days: float | None  # days since the last positive engagement; None if never
    model: str

    def summary(self, n: int = 3) -> str:
        """The n strongest reasons, signals first, e.g. for a task body."""
        signal_texts = [r.text for r in self.reasons if r.kind == "signal"]
        others = sorted((r for r in self.reasons if r.kind in ("fit", "engagement") and r.points > 0),
                        key=lambda r: (-r.points, r.rule))
        parts = signal_texts + [r.text for r in others]
        if self.disqualified:
            parts.insert(0, f"not promoted: {self.disqualified}")
        return "; ".join(list(dict.fromkeys(parts))[:n])  # a signal and a rule may share a text

    def reason_text(self, max_len: int = 255) -> str:
        """The short "why this score" written to the CRM: the strongest reasons for *and against*, each with its
        points ("+8 enterprise (10,000+ employees); +5 in a market we sell to; -10 personal email address;
        -15 unsubscribed from emails"), so a low score shows what held it down. Whole parts only, chosen
        strongest first and alternating for/against, then shown in reading order; within `max_len`."""
        signals = [r.text for r in self.reasons if r.kind == "signal"]
        pointed = [r for r in self.reasons if r.kind in ("fit", "engagement", "disqualifier") and r.points]
        pros = sorted((r for r in pointed if r.points > 0), key=lambda r: (-r.points, r.rule))
        cons = sorted((r for r in pointed if r.points < 0), key=lambda r: (r.points, r.rule))
        texts = {r.text for r in pros}
        head = ([f"not promoted: {self.disqualified}"] if self.disqualified else []) + \
            [t for t in dict.fromkeys(signals) if t not in texts]
        pro_parts = [f"+{r.points} {r.text}" for r in pros]
        con_parts = [f"{r.points} {r.text}" for r in cons]
        order = head + [p for pair in zip_longest(pro_parts, con_parts) for p in pair if p is not None]
        chosen: set[str] = set()
        used = 0
        for part in order:
            cost = len(part) + (2 if chosen else 0)
            if used + cost <= max_len:
                chosen.add(part)
                used += cost
        text = "; ".join(p for p in head + pro_parts + con_parts if p in chosen)
        if not text and order:  # one part longer than the field: cut it, visibly
            text = order[0][: max_len - 1] + "…"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, fixed key order, floats rounded: the same inputs give the same bytes."""
        return {
            "model": self.model, "fit": self.fit, "engagement": self.engagement, "total": self.total,
            "stage": self.stage.value, "disqualified": self.disqualified, "signals": list(self.signals),
            "interests": list(self.interests),
            "idle_days": None if self.idle_days is None else _r(self.idle_days),
            "reasons": [r.to_dict() for r in self.reasons],
        }


def _r(x: float) -> float:
    return round(x, 4) + 0.0  # + 0.0 turns -0.0 into 0.0
