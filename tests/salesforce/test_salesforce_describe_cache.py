"""Describes kept across runs: one conditional Describe Global per run while nothing changed, a changed object
read again (and only it), and a cache from another org never used. Through simple-salesforce, over TLS."""

from __future__ import annotations

import copy
import time
from collections import Counter

from sandbox.salesforce import SalesforceEmulator


def _calls(emu: SalesforceEmulator, before: Counter) -> dict[tuple[str, int], int]:
    return {k: n for k, n in (emu.app.counts - before).items() if k[0].startswith("sf.describe")}


def test_a_second_run_validates_the_saved_describes_with_one_call(emu, make_connector) -> None:
    first = make_connector()
    assert first.missing_fields() == []
    assert emu.app.counts[("sf.describe", 200)] == 3  # Lead, Contact, Task: once each, not once per field
    cache = first.metadata_cache
    assert cache is not None and set(cache["objects"]) == {"Lead", "Contact", "Task"}

    before = emu.app.counts.copy()
    second = make_connector()
    second.metadata_cache = cache
    assert second.missing_fields() == []
    assert second.fields_of("Lead")["LeadSync_Score__c"]["type"] == "double"
    assert _calls(emu, before) == {("sf.describe_global", 304): 1}  # and no describe at all
    assert second.api_calls == 1


def test_a_changed_describe_is_read_again_and_the_others_stay(emu, make_connector) -> None:
    first = make_connector()
    first.missing_fields()
    cache = first.metadata_cache
    emu.add_custom_field("Lead", "Course__c", label="Course")  # an admin adds a field in Setup, and later …
    time.sleep(1.1)  # (HTTP dates are whole seconds: a read in the change's second is checked again next run)

    before = emu.app.counts.copy()
    second = make_connector(extra_fields={"Lead": ["Course__c"]})
    second.metadata_cache = cache
    assert second.missing_fields() == []  # the new field is seen: no UNKNOWN_FIELDS from a stale describe
    assert "Course__c" in second.select_list("Lead")
    assert _calls(emu, before) == {("sf.describe_global", 200): 1, ("sf.describe", 200): 1,
                                   ("sf.describe", 304): 2}
    # The next run's check is quiet again.
    before = emu.app.counts.copy()
    third = make_connector(extra_fields={"Lead": ["Course__c"]})
    third.metadata_cache = second.metadata_cache
    assert third.missing_fields() == [] and _calls(emu, before) == {("sf.describe_global", 304): 1}


def test_a_cache_from_another_org_is_not_used(emu, make_connector) -> None:
    first = make_connector()
    first.missing_fields()
    other = copy.deepcopy(first.metadata_cache)
    other["org"] = "https://another.my.salesforce.com/services/data/v59.0/"
    del other["objects"]["Lead"]["fields"]["LeadSync_Score__c"]  # it would say the field is missing

    before = emu.app.counts.copy()
    second = make_connector()
    second.metadata_cache = other
    assert second.missing_fields() == []
    assert _calls(emu, before) == {("sf.describe", 200): 3}
