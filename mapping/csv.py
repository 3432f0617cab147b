"""CSV export rows ⇄ canonical model, through the column mapping in the connector's settings. Pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from connectors.base import RawPage
from mapping.base import MappedPage, MappingIssue
from mapping.model import Contact, Engagement, EngagementKind, Stage

SOURCE = "csv"
MANAGED_FIELDS = ("lifecycle_stage", "leadsync_score", "leadsync_fit", "leadsync_engagement", "leadsync_reason")
_STAGE_ALIASES = {"marketingqualifiedlead": Stage.MQL, "salesqualifiedlead": Stage.SQL, "evangelist": Stage.OTHER}


def _stage(raw: str) -> Stage | None:
    key = raw.strip().lower()
    if not key:
        return None
    return _STAGE_ALIASES.get(key) or (Stage(key) if key in Stage._value2member_map_ else Stage.OTHER)


def _when(raw: str) -> datetime:
    dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _contact(row: dict[str, str], cols: dict[str, str], issues: list[MappingIssue]) -> Contact:
    def get(name: str) -> str:
        return (row.get(cols.get(name, ""), "") or "").strip()

    rid = get("id") or f"row-{row['_row']}"
    values: dict[str, Any] = {}
    for name in ("email", "first_name", "last_name", "title", "company", "industry", "country", "owner_id",
                 "lead_status"):
        values[name] = get(name) or None
    size = get("company_size")
    if size:
        try:
            values["company_size"] = int(float(size.replace(",", "")))
        except ValueError:
            issues.append(MappingIssue(SOURCE, rid, cols["company_size"], f"not a number: {size!r}"))
    for name in ("created_at", "updated_at"):
        if get(name):
            try:
                values[name] = _when(get(name))
            except ValueError:
                issues.append(MappingIssue(SOURCE, rid, cols[name], f"not an ISO date-time: {get(name)!r}"))
    used = set(cols.values())
    extra = {k: v for k, v in row.items() if k not in used and k != "_row" and k not in MANAGED_FIELDS}
    managed = {k: (row.get(k) or None) for k in MANAGED_FIELDS if k in row}
    stage = _stage(row.get("lifecycle_stage") or get("lifecycle_stage"))  # leadsync's own column wins
    return Contact(source=SOURCE, id=rid, object_type="row", lifecycle_stage=stage,
                   managed=managed, extra=extra, **values)


def _engagement(row: dict[str, str], cols: dict[str, str], kinds: dict[str, str],
                issues: list[MappingIssue]) -> Engagement | None:
    def get(name: str) -> str:
        return (row.get(cols.get(name, ""), "") or "").strip()

    rid = get("id") or f"row-{row['_row']}"
    raw_kind = get("kind")
    kind_value = kinds.get(raw_kind, raw_kind.lower())
    kind = EngagementKind(kind_value) if kind_value in EngagementKind._value2member_map_ else EngagementKind.OTHER
    try:
        at = _when(get("occurred_at"))
    except ValueError:
        issues.append(MappingIssue(SOURCE, rid, cols.get("occurred_at", "occurred_at"),
                                   f"not an ISO date-time: {get('occurred_at')!r}; engagement not scored"))
        return None
    return Engagement(SOURCE, rid, get("contact_id"), kind, at, get("detail"), get("campaign"))


def map_page(page: RawPage) -> MappedPage:
    out = MappedPage()
    if page.stream == "contacts":
        cols = page.meta["contact_columns"]
        out.contacts = [_contact(r, cols, out.issues) for r in page.records]
    else:
        cols, kinds = page.meta["engagement_columns"], page.meta["kind_values"]
        out.engagements = [e for r in page.records if (e := _engagement(r, cols, kinds, out.issues))]
    return out


DISQUALIFIED_STATUS = None
LEAD_STATUS_FIELD = "lead_status"


def copy_fields(object_type: str) -> dict[str, str]:
    """CSV exports take no copied fields: planned writes there are score and stage only."""
    return {}


def outbound_fields(stage: Stage | None, score: int, fit: int, engagement: int, reason: str,
                    link: str | None = None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"leadsync_score": str(score), "leadsync_fit": str(fit),
                                  "leadsync_engagement": str(engagement), "leadsync_reason": reason}
    if stage is not None:
        out["lifecycle_stage"] = stage.value
    return out
