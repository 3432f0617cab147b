"""Which lifecycle stage to write: the score proposes, this policy disposes.

Kept apart from the scorer because it encodes who owns the field, not how
good a lead is: sales owns opportunity/customer/other and the disqualifying
lead statuses, and leadsync only ever moves a stage forward, with one
deliberate exception (recycling a rejected SQL that has gone quiet).
"""

from __future__ import annotations

from collections.abc import Sequence

from mapping.model import SALES_OWNED, STAGE_RANK, Stage
from scoring.schema import ScoringModel
from scoring.scorer import Score


def status_in(lead_status: str | None, statuses: Sequence[str]) -> bool:
    """Whether a lead status is one of `statuses`, compared as a person reads them (case, spaces)."""
    if not lead_status:
        return False
    folded = lead_status.strip().casefold()
    return any(folded == s.strip().casefold() for s in statuses)


def next_stage(model: ScoringModel, current: Stage | None, lead_status: str | None, s: Score) -> Stage | None:
    """The stage to write, or None to leave the CRM's stage alone.

    Forward-only; never over a sales-owned stage or a disqualifying lead status;
    a disqualified contact is not promoted past lead. A recycle lead status sends
    an idle SQL back to the recycle stage and holds promotion until it engages again.
    """
    if current in SALES_OWNED or status_in(lead_status, model.policy.disqualifying_lead_statuses):
        return None
    recycle = model.recycle
    if status_in(lead_status, recycle.lead_statuses):
        idle = s.idle_days is None or s.idle_days >= recycle.after_days
        if idle:
            return Stage(recycle.to_stage) if current is Stage.SQL else None
    target = s.stage
    if s.disqualified and STAGE_RANK[target] > STAGE_RANK[Stage.LEAD]:
        target = Stage.LEAD
    if current is None or STAGE_RANK[target] > STAGE_RANK[current]:
        return target
    return None
