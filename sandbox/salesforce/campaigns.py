"""Campaign membership rules the org applies on save (BEHAVIOR.md, "Campaigns").

A new Campaign gets the two member statuses Salesforce gives every campaign, "Sent" (the default) and
"Responded" (responded), as `CampaignMemberStatus` rows. A CampaignMember needs a Lead or a Contact, takes the
campaign's default status when none is sent, must use one of the campaign's statuses (campaigns without status
rows, like the seeded ones, take any), derives `HasResponded` from it, and one person is a member of a campaign
once: a second insert fails `DUPLICATE_VALUE` "Already a campaign member.".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.salesforce.store import RecordError, WriteRejected

if TYPE_CHECKING:
    from sandbox.salesforce.store import Row, Store

DEFAULT_STATUSES = (("Sent", False, True), ("Responded", True, False))  # (Label, HasResponded, IsDefault)


def add_default_statuses(store: Store, campaign_id: str) -> None:
    """The member statuses a campaign created through the API starts with."""
    for order, (label, responded, default) in enumerate(DEFAULT_STATUSES, start=1):
        row = store.prepare_create("CampaignMemberStatus", {"CampaignId": campaign_id, "Label": label,
                                                            "HasResponded": responded, "IsDefault": default,
                                                            "SortOrder": order})
        store.commit_create("CampaignMemberStatus", row)


def _statuses(store: Store, campaign_id: str) -> list[Row]:
    table = store.tables["CampaignMemberStatus"]
    return sorted((r for r in table.rows.values() if r["CampaignId"] == campaign_id and not r["IsDeleted"]),
                  key=lambda r: r.get("SortOrder") or 0)


def _status(store: Store, campaign_id: str, label: Any) -> tuple[str | None, bool]:
    """The status to store and whether it counts as responded; raises for one the campaign lacks."""
    rows = _statuses(store, campaign_id)
    if not rows:
        return label, False
    if label in (None, ""):
        chosen = next((r for r in rows if r.get("IsDefault")), rows[0])
        return chosen["Label"], bool(chosen.get("HasResponded"))
    match = next((r for r in rows if r["Label"] == label), None)
    if match is None:  # (assumed code: no public recording of this rejection)
        raise WriteRejected(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                        f"Status: bad value for restricted picklist field: {label}", ("Status",)))
    return match["Label"], bool(match.get("HasResponded"))


def check_new_member(store: Store, row: Row) -> None:
    """Who, status and the one-membership rule, before a CampaignMember insert is committed."""
    who = [(name, row.get(name)) for name in ("LeadId", "ContactId") if row.get(name)]
    if not who:  # (assumed message)
        raise WriteRejected(RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [LeadId, ContactId]",
                                        ("LeadId", "ContactId")))
    for other in store.tables["CampaignMember"].rows.values():
        if other["IsDeleted"] or other["CampaignId"] != row["CampaignId"]:
            continue
        if any(other.get(name) == value for name, value in who):  # openstax/tutor-server#1653
            raise WriteRejected(RecordError("DUPLICATE_VALUE", "Already a campaign member."))
    row["Status"], row["HasResponded"] = _status(store, row["CampaignId"], row.get("Status"))


def check_member_update(store: Store, row: Row, changes: dict[str, Any]) -> None:
    """A status change must name one of the campaign's statuses; `HasResponded` follows it."""
    if "Status" in changes:
        changes["Status"], changes["HasResponded"] = _status(store, row["CampaignId"], changes["Status"])
