"""Unreadable Salesforce values (out-of-range datetimes, overflowing numbers) are issues, never crashes."""

from __future__ import annotations

import pytest

from connectors.base import RawPage
from mapping.salesforce import BadValue, map_page, parse_datetime, parse_int


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59.000-0500", "0001-01-01T00:00:00.000+0100", "10000-01-01T00:00:00.000+0000",
    253402300800000, "2026-13-01", ["2026-01-01"],
])
def test_unreadable_datetimes_are_bad_values(value):
    with pytest.raises(BadValue):
        parse_datetime(value)


@pytest.mark.parametrize("value", ["1e309", 1e309, float("nan"), "NaN", "12 employees", 10**400, "9" * 5000,
                                   {"n": 1}, -5], ids=lambda v: repr(v)[:20])
def test_unreadable_numbers_are_bad_values(value):
    with pytest.raises(BadValue):
        parse_int(value)


@pytest.mark.parametrize(("record", "field"), [
    ({"NumberOfEmployees": 1e309}, "NumberOfEmployees"), ({"NumberOfEmployees": "1e309"}, "NumberOfEmployees"),
    ({"CreatedDate": "9999-12-31T23:59:59.000-0500"}, "CreatedDate"), ({"Email": "   x"}, "Email"),
    ({"SystemModstamp": 10**30}, "SystemModstamp"),
])
def test_bad_lead_values_are_issues_naming_record_and_field(record, field):
    page = map_page(RawPage("Lead", [{"Id": "00Q1", "LastName": "Ng", **record}]))
    assert len(page.contacts) == 1
    assert [(i.record_id, i.field) for i in page.issues] == [("00Q1", field)]


def test_far_future_event_is_an_issue_and_the_page_still_maps():
    records = [{"Id": "00U1", "WhoId": "00Q1", "ActivityDateTime": "9999-12-31T23:59:59.000-0500"},
               {"Id": "00U2", "WhoId": "00Q1", "ActivityDateTime": "2026-05-01T07:25:37.000+0000"}]
    page = map_page(RawPage("Event", records))
    assert [e.id for e in page.engagements] == ["00U2"]
    assert {(i.record_id, i.field) for i in page.issues} == {("00U1", "ActivityDateTime")}
