"""Property-based: whatever JSON a CRM sends, `map_page` ends with mapped records or MappingIssues
naming record and field, never an exception. Bounded examples, no deadline (CI machines vary)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import RawPage
from mapping import hubspot, salesforce
from mapping.base import MappedPage

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", " ", "253402300800000", "9" * 400, "1e309", "NaN", "-1", "²", "12 employees",
                     "100-500", "10000+", "2026-05-01T07:25:37.000+0000", "9999-12-31T23:59:59.000-0500",
                     "0001-01-01T00:00:00+01:00", "lead", "customer", "SQL", "a@b.co", "[/i]x@y.io", "\x00",
                     "true", "OPEN", "CLICK", "BOUNCE", "Call", "Email", "Re: hi"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


def _record(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding any of `keys` (and a few unknown ones) with any JSON values."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=6)), json_values, max_size=len(keys))


HS_PROPS = (*hubspot.CONTACT_PROPERTIES, "hs_object_id", "hs_meeting_start_time", "hs_timestamp", "hs_meeting_title",
            "hs_url", "team_extra")
HS_TOP = ("id", "createdAt", "updatedAt", "archived", "associations", "objectId", "occurredAt", "created", "type",
          "category", "portalSubscriptionStatus", "recipient", "emailCampaignId", "submittedAt", "conversionId",
          "values", "formName")


@st.composite
def hubspot_records(draw: Any) -> dict[str, Any]:
    record = draw(_record(HS_TOP))
    record["properties"] = draw(st.one_of(_record(HS_PROPS), json_values))
    if draw(st.booleans()):
        record["associations"] = {"contacts": {"results": draw(st.lists(_record(("id", "type")), max_size=3))}}
    if draw(st.booleans()):
        record["values"] = draw(st.lists(_record(("name", "value")), max_size=3))
    return record


HS_STREAMS = ("contacts", "contacts_archived", "meetings", "page_views", "email_events", "form_submissions", "nope")
HS_META = st.fixed_dictionaries({}, optional={
    "campaign_names": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    "form_name": st.text(max_size=10), "form_id": st.text(max_size=5),
    hubspot.EXTRA_META: st.lists(st.sampled_from(HS_PROPS), max_size=3)})

SF_FIELDS = tuple(sorted({f for fields in salesforce.SELECT_FIELDS.values() for f in fields if "." not in f}
                         | {salesforce.TASK_KEY_FIELD, "Company", "Status"}))
SF_PARENTS = ("Account", "Campaign", salesforce.LINKED_MESSAGE, salesforce.LINKED_TASK)


@st.composite
def salesforce_records(draw: Any) -> dict[str, Any]:
    record = draw(_record(SF_FIELDS))
    for parent in SF_PARENTS:
        if draw(st.booleans()):
            record[parent] = draw(st.one_of(_record(SF_FIELDS + ("Name", "Type", "Industry")), json_values))
    return record


SF_STREAMS = (*salesforce.CONTACT_OBJECTS, *salesforce.ENGAGEMENT_OBJECTS, *salesforce.HISTORY_OBJECTS, "Opportunity", "Account")
SF_META = st.fixed_dictionaries({}, optional={salesforce.ORG_STAGE_VALUES: st.booleans(),
                                              salesforce.EXTRA_META: st.lists(st.sampled_from(SF_FIELDS), max_size=3)})


def _check(out: MappedPage, page: RawPage, source: str, contact_streams: tuple[str, ...]) -> None:
    assert all(i.source == source and isinstance(i.record_id, str) and i.field and i.message for i in out.issues)
    if page.stream in contact_streams:  # a bad value never costs the record
        assert len(out.contacts) == len(page.records)


@FUZZ
@given(st.sampled_from(HS_STREAMS), st.lists(hubspot_records(), max_size=4), HS_META)
def test_hubspot_map_page_never_raises(stream, records, meta):
    page = RawPage(stream, records, None, meta)
    _check(hubspot.map_page(page), page, "hubspot", ("contacts", "contacts_archived"))


@FUZZ
@given(st.sampled_from(SF_STREAMS), st.lists(salesforce_records(), max_size=4), SF_META)
def test_salesforce_map_page_never_raises(stream, records, meta):
    page = RawPage(stream, records, None, meta)
    _check(salesforce.map_page(page), page, "salesforce", salesforce.CONTACT_OBJECTS)
