"""Where leadsync's stage and score live in this org: custom fields (default) or `Lead.Status`.

Salesforce has no lifecycle-stage field, so stage writeback needs a custom
picklist or a mapping onto `Lead.Status` (reference §3). The plan, the audit
log and the mapping layer always speak leadsync's logical fields
(`mapping.salesforce.MANAGED_FIELDS`, stage values `MQL`, `SQL`, …); this
module translates them to the org's field names and picklist values at the
wire, both ways, so a second sync still diffs to zero writes. Which values
exist is read from the org (describe, `LeadStatus`) at start-up, never assumed
(reference §7.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from connectors.base import ConfigError
from mapping.model import STAGE_RANK, Stage
from mapping.salesforce import MANAGED_FIELDS, STAGE_FROM_SALESFORCE, STAGE_TO_SALESFORCE

STAGE_KEY = "LeadSync_Stage__c"  # the logical stage field every layer above the connector uses
STATUS = "Status"
#: Stages leadsync itself moves a lead into; a `Lead.Status` mapping must give each a value.
WRITTEN_STAGES: tuple[Stage, ...] = (Stage.SUBSCRIBER, Stage.LEAD, Stage.MQL, Stage.SQL)

Record = dict[str, Any]


@dataclass(frozen=True)
class FieldMap:
    """Logical field ⇄ org field, and canonical stage ⇄ the org's picklist value, per object."""

    stage_field: str = STAGE_KEY  # on Lead; Contacts have no Status and keep the custom field
    stage_values: Mapping[Stage, str] = field(default_factory=lambda: dict(STAGE_TO_SALESFORCE))
    renames: Mapping[str, str] = field(default_factory=dict)  # logical score field → org field

    @classmethod
    def build(cls, stage_field: str, stage_values: Mapping[Stage, str], renames: Mapping[str, str]) -> FieldMap:
        """From settings: an empty `stage_values` means leadsync's own labels (custom-field mode)."""
        unknown = sorted(set(renames) - set(MANAGED_FIELDS))
        if unknown:
            raise ConfigError(f"field_names: not a leadsync field: {', '.join(unknown)}", code="BAD_FIELD_MAP")
        if STAGE_KEY in renames:
            raise ConfigError("field_names: set the stage field with stage_field, not field_names",
                              code="BAD_FIELD_MAP")
        values = dict(stage_values) if stage_values else (dict(STAGE_TO_SALESFORCE) if stage_field != STATUS else {})
        return cls(stage_field, values, dict(renames))

    @cached_property
    def identity(self) -> bool:
        """Nothing to translate: the common case costs no per-record work."""
        return self.stage_field == STAGE_KEY and not self.renames and dict(self.stage_values) == dict(
            STAGE_TO_SALESFORCE)

    def org_stage_values(self, sobject: str) -> bool:
        """Whether this object's stage is translated, so pulled stage values may be the org's own."""
        if sobject == "Contact" and self.stage_field != STAGE_KEY:
            return False  # Contacts keep the custom field and leadsync's labels
        return sobject in ("Lead", "Contact") and not (
            self.stage_field == STAGE_KEY and dict(self.stage_values) == dict(STAGE_TO_SALESFORCE))

    def org_field(self, sobject: str, logical: str) -> str:
        """The org's name for a logical field on this object (other fields pass through)."""
        if logical == STAGE_KEY:
            return self.stage_field if sobject == "Lead" else STAGE_KEY
        return self.renames.get(logical, logical)

    def logical_field(self, sobject: str, org: str) -> str:
        for name in (STAGE_KEY, *MANAGED_FIELDS):
            if self.org_field(sobject, name) == org:
                return name
        return org

    def managed(self, sobject: str) -> list[str]:
        """The org fields leadsync writes on this object."""
        return [self.org_field(sobject, name) for name in MANAGED_FIELDS]

    def select(self, sobject: str, fields: Iterable[str]) -> list[str]:
        """A logical SELECT list in org names, each field once (`Status` is already selected on Lead)."""
        return list(dict.fromkeys(self.org_field(sobject, f) for f in fields))

    # ------------------------------------------------------------------ values
    def to_org(self, sobject: str, values: Mapping[str, Any]) -> Record:
        """Plan values (logical names, leadsync stage labels) → the org's fields and picklist values."""
        if self.identity:
            return dict(values)
        out: Record = {}
        for name, value in values.items():
            org = self.org_field(sobject, name)
            if name == STAGE_KEY and value is not None and (sobject == "Lead" or self.stage_field == STAGE_KEY):
                value = self._org_stage(sobject, str(value))
            out[org] = value
        return out

    def from_org(self, sobject: str, record: Record) -> Record:
        """A pulled record in logical terms: renamed fields back, the stage as leadsync's label.

        A value no stage maps to stays as the org's value, so the plan's "before"
        (audit, undo) is what the org really held.
        """
        if self.identity or sobject not in ("Lead", "Contact"):
            return record
        for logical, org in self.renames.items():
            if org in record:
                record[logical] = record.pop(org)
        stage_org = self.org_field(sobject, STAGE_KEY)
        if stage_org in record and (sobject == "Lead" or self.stage_field == STAGE_KEY):
            org_value = record[stage_org]
            record[STAGE_KEY] = self._label(org_value) or org_value  # unmapped: the org's value, kept for undo
        return record

    def _org_stage(self, sobject: str, label: str) -> str:
        """leadsync's label → the org's value; any other value is already the org's (undo restoring a status)."""
        stage = STAGE_FROM_SALESFORCE.get(label)
        if stage is None:
            return label
        value = self.stage_values.get(stage)
        if value is None:
            raise ConfigError(f"stage_values has no {sobject} value for stage {label!r}", code="BAD_STAGE_VALUES")
        return value

    def _label(self, org_value: Any) -> str | None:
        """The highest stage mapped to this value (several stages may share one status); unmapped → None."""
        stages = [s for s, v in self.stage_values.items() if v == org_value]
        return STAGE_TO_SALESFORCE[max(stages, key=STAGE_RANK.__getitem__)] if stages else None

    # ------------------------------------------------------------------ start-up
    def validate(self, lead_fields: Mapping[str, Mapping[str, Any]], converted: Iterable[str] = ()) -> None:
        """Check the stage values against the org's picklist (describe) and converted statuses (LeadStatus).

        An unknown value is a `ConfigError` naming it; so is a converted status
        (converting a lead takes convertLead, not an update) and, for `Lead.Status`,
        a stage leadsync writes that has no value.
        """
        described = lead_fields.get(self.stage_field)
        if described is None:
            return  # a missing field is reported by missing_fields()
        allowed = {p["value"] for p in described.get("picklistValues") or [] if p.get("active", True)}
        unknown = sorted({v for v in self.stage_values.values() if v not in allowed})
        if unknown:
            raise ConfigError(f"stage_values: {', '.join(map(repr, unknown))} not in the picklist of "
                              f"Lead.{self.stage_field} (it lists: {', '.join(sorted(allowed))})",
                              code="BAD_STAGE_VALUES")
        converting = sorted(set(self.stage_values.values()) & set(converted))
        if converting:
            raise ConfigError(f"stage_values: {', '.join(map(repr, converting))} is a converted lead status; "
                              "leadsync cannot convert leads", code="BAD_STAGE_VALUES")
        if self.stage_field == STATUS:
            uncovered = [s.value for s in WRITTEN_STAGES if s not in self.stage_values]
            if uncovered:
                raise ConfigError(f"stage_values: give a Lead.Status value for {', '.join(uncovered)}",
                                  code="BAD_STAGE_VALUES")
