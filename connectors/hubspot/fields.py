"""The custom properties leadsync writes, and their idempotent creation (reference §3.4)."""

from __future__ import annotations

from dataclasses import dataclass

from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from connectors.hubspot.transport import HubSpotError, Transport


@dataclass(frozen=True)
class FieldSpec:
    object_type: str
    name: str
    label: str
    type: str
    field_type: str
    description: str
    unique: bool = False  # `hasUniqueValue`: HubSpot refuses a second record with the same value

    @property
    def qualified(self) -> str:
        return f"{self.object_type}.{self.name}"


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("contacts", "leadsync_score", "leadsync score", "number", "number",
              "Lead score (fit + engagement) computed by leadsync."),
    FieldSpec("contacts", "leadsync_fit", "leadsync fit", "number", "number", "Fit points computed by leadsync."),
    FieldSpec("contacts", "leadsync_engagement", "leadsync engagement", "number", "number",
              "Engagement points computed by leadsync."),
    FieldSpec("contacts", "leadsync_reason", "leadsync reason", "string", "textarea",
              "Why leadsync scored this contact as it did."),
    FieldSpec("contacts", "leadsync_salesforce_id", "leadsync Salesforce id", "string", "text",
              "The Salesforce Lead or Contact leadsync linked this contact to (one person across both CRMs)."),
    FieldSpec("contacts", "leadsync_person_key", "leadsync person key", "string", "text",
              "Idempotency key of a contact leadsync created for a person from Salesforce.", unique=True),
    FieldSpec("tasks", "leadsync_key", "leadsync key", "string", "text",
              "Idempotency key: a task is created at most once per key."),
)


class Fields:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def missing(self) -> list[FieldSpec]:
        """Reads only: one properties list per object type."""
        api = self.t.api("crm.properties.core_api")
        have: dict[str, set[str]] = {}
        for object_type in sorted({f.object_type for f in FIELDS}):
            _, body = self.t.call(api.get_all, object_type, archived=False)
            have[object_type] = {str(p.get("name")) for p in body.get("results") or []}
        return [f for f in FIELDS if f.name not in have[f.object_type]]

    def unknown(self, object_type: str, names: tuple[str, ...]) -> list[str]:
        """Which of `names` the portal has no property for (one properties list call, reference §3.4)."""
        if not names:
            return []
        _, body = self.t.call(self.t.api("crm.properties.core_api").get_all, object_type, archived=False)
        have = {str(p.get("name")) for p in body.get("results") or []}
        return [n for n in names if n not in have]

    def ensure(self, group: str) -> list[FieldSpec]:
        """Create the group and missing properties; a 409 means another run got there first."""
        missing = self.missing()
        created: list[FieldSpec] = []
        for object_type in sorted({f.object_type for f in missing}):
            self._ensure_group(object_type, group)
        for spec in missing:
            if self._create(spec, group):
                created.append(spec)
        return created

    def _ensure_group(self, object_type: str, group: str) -> None:
        api = self.t.api("crm.properties.groups_api")
        try:
            self.t.call(api.create, object_type, PropertyGroupCreate(name=group, label=group, display_order=-1))
        except HubSpotError as err:
            if err.status != 409:
                raise

    def _create(self, spec: FieldSpec, group: str) -> bool:
        api = self.t.api("crm.properties.core_api")
        body = PropertyCreate(name=spec.name, label=spec.label, type=spec.type, field_type=spec.field_type,
                              group_name=group, description=spec.description, has_unique_value=spec.unique)
        try:
            self.t.call(api.create, spec.object_type, body)
        except HubSpotError as err:
            if err.status == 409:
                return False
            raise
        return True
