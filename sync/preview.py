"""What a plan would change, summed up for a person deciding whether to ship a model: who moves, how far, why.

A plan's outputs (sync.engine.PlanOutput per CRM) list every field, task and hand-off; a preview adds
what a marketer asks before switching models: how many persons change stage and in which direction,
which fields and how often, how many tasks each owner would get, and the persons whose score or stage
moves most, with the reasons (points now against points in the last applied score). Pure: the last
scores come in as plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mapping.model import STAGE_RANK, Stage
from scoring import Score

#: The owner a hand-off record gets when the settings name none (Salesforce: the queue owner or the API user).
NEW_RECORD_OWNER = "(new record's default owner)"
#: (total, stage) of a record's last applied score, by record key; None when it was never scored.
LastScores = Mapping[str, tuple[int | None, str | None]]


@dataclass(frozen=True)
class Mover:
    person: str
    records: tuple[str, ...]
    emails: tuple[str, ...]
    stage_from: str | None
    stage_to: str | None
    score_from: int | None
    score: Score

    @property
    def score_change(self) -> int:
        return self.score.total - (self.score_from or 0)

    @property
    def stage_steps(self) -> int:
        if self.stage_to is None:
            return 0
        before = STAGE_RANK[Stage(self.stage_from)] if self.stage_from else 0
        return STAGE_RANK[Stage(self.stage_to)] - before


def build_preview(plans: Sequence[tuple[Any, Any]], last: LastScores, model_label: str, top: int = 10,
                  last_detail: Callable[[str], dict[str, Any] | None] = lambda key: None) -> dict[str, Any]:
    """The preview of these plans (`(RunSummary, PlanOutput)` per CRM) as one JSON-ready dict."""
    persons: set[str] = set()
    fields: dict[str, int] = {}
    owners: dict[str, int] = {}
    handoffs: dict[str, int] = {}
    movers: dict[str, dict[str, Any]] = {}
    for summary, out in plans:
        persons |= out.persons
        for ch in out.set_fields:
            for name in ch.fields:
                key = f"{summary.source}.{name}"
                fields[key] = fields.get(key, 0) + 1
            _add_mover(movers, out, ch.source, ch.record_id, ch.email,
                       ch.stage_from.value if ch.stage_from else None, ch.stage_to.value if ch.stage_to else None)
        for t in out.tasks:
            owner = f"{summary.source}:{t.owner_id or '(no owner)'}"
            owners[owner] = owners.get(owner, 0) + 1
        for h in out.handoffs:
            handoffs[h.target] = handoffs.get(h.target, 0) + 1
            if h.task is not None:  # the why-now task rides on the created record, for its owner
                owner = f"{h.target}:{h.values.get('owner_id') or NEW_RECORD_OWNER}"
                owners[owner] = owners.get(owner, 0) + 1
            origin = movers.get(out.scores.get(h.origin, (None, h.origin))[1])
            if origin is not None and origin["stage_to"] is None:
                origin["stage_to"] = h.stage.value
    ranked = sorted((_mover(m, last) for m in movers.values()),
                    key=lambda m: (-abs(m.stage_steps), -abs(m.score_change), m.person))
    moving = sum(1 for m in movers.values() if m["stage_to"] is not None)
    return {
        "model": model_label,
        "persons": len(persons), "persons_moving_stage": moving,
        "share_moving_stage": round(moving / len(persons), 4) if persons else 0.0,
        "persons_changed": len(movers),
        "fields": dict(sorted(fields.items())),
        "tasks_by_owner": dict(sorted(owners.items(), key=lambda kv: (-kv[1], kv[0]))),
        "handoffs": dict(sorted(handoffs.items())),
        "most_affected": [_mover_dict(m, last_detail) for m in ranked[:top]],
    }


def _add_mover(movers: dict[str, dict[str, Any]], out: Any, source: str, record_id: str, email: str | None,
               stage_from: str | None, stage_to: str | None) -> None:
    key = f"{source}:{record_id}"
    found = out.scores.get(key)
    if found is None:
        return
    score, person = found
    m = movers.setdefault(person, {"person": person, "records": [], "emails": [], "stage_from": stage_from,
                                   "stage_to": None, "score": score, "record": key})
    m["records"].append(key)
    if email and email not in m["emails"]:
        m["emails"].append(email)
    if stage_to is not None and (m["stage_to"] is None or STAGE_RANK[Stage(stage_to)] > STAGE_RANK[Stage(m["stage_to"])]):
        m["stage_from"], m["stage_to"] = stage_from, stage_to


def _mover(m: dict[str, Any], last: LastScores) -> Mover:
    before = [last[k][0] for k in m["records"] if k in last and last[k][0] is not None]
    return Mover(m["person"], tuple(m["records"]), tuple(m["emails"]), m["stage_from"], m["stage_to"],
                 before[0] if before else None, m["score"])


def _mover_dict(m: Mover, last_detail: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    was: dict[str, int] = {}
    for key in m.records:
        detail = last_detail(key)
        if detail:
            was = {r["rule"]: r["points"] for r in detail.get("reasons", [])}
            break
    now = {r.rule: r for r in m.score.reasons}
    changed = [{"rule": rule, "text": now[rule].text if rule in now else rule, "before": was.get(rule, 0),
                "after": now[rule].points if rule in now else 0}
               for rule in sorted(set(was) | set(now))
               if was.get(rule, 0) != (now[rule].points if rule in now else 0)]
    changed.sort(key=lambda c: -abs(c["after"] - c["before"]))
    return {
        "person": m.person, "records": list(m.records), "emails": list(m.emails),
        "stage": {"from": m.stage_from, "to": m.stage_to},
        "score": {"from": m.score_from, "to": m.score.total, "change": m.score_change},
        "fit": m.score.fit, "engagement": m.score.engagement,
        "reasons": [{"rule": r.rule, "points": r.points, "text": r.text}
                    for r in sorted(m.score.reasons, key=lambda r: (-abs(r.points), r.rule))[:6]],
        "reasons_changed": changed[:6],
    }
