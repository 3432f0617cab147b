"""EmailMessage engagement, de-duplicated against the email Tasks it shares with; and `extra_fields`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import ConfigError, RawPage
from mapping.model import EngagementKind, FieldChange, SetFields
from mapping.salesforce import email_kind, map_page
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.data import SeedLoader
from sandbox.salesforce.schema import build_schema
from sandbox.salesforce.store import Store
from sync.state import State
from tests.salesforce.conftest import ANCHOR, SESSION


def _engagements(pages: list[RawPage]) -> list:
    return [e for p in pages for e in map_page(p).engagements]


# ------------------------------------------------------------------ emulator


def test_email_messages_are_seeded_from_email_tasks_deterministically(emu: SalesforceEmulator, sf) -> None:
    again = SalesforceEmulator(seed=1, contacts=2000, anchor=ANCHOR, session_id=SESSION)
    seeded = Store(build_schema(), lambda: ANCHOR)  # the seed alone, without the derived messages
    SeedLoader(seeded, ANCHOR).load(1, 2000)
    for name, table in seeded.tables.items():  # every seeded row (and id counter) is as the seed made it
        if name != "EmailMessage":
            assert emu.store.tables[name].rows == table.rows and emu.store.tables[name].counter == table.counter
    messages = emu.records("EmailMessage")
    assert messages and messages == again.records("EmailMessage")
    tasks = {t["Id"]: t for t in emu.records("Task")}
    email_tasks = [t for t in tasks.values() if t["TaskSubtype"] == "Email"]
    assert 0 < len(messages) < len(email_tasks)  # a subset, chosen by a hash of the task id
    assert len({m["ActivityId"] for m in messages}) == len(messages)
    kinds = Counter(email_kind(m) for m in messages)
    assert kinds[EngagementKind.EMAIL_REPLY] and kinds[EngagementKind.EMAIL_OPEN] and kinds[EngagementKind.OTHER]
    for m in messages:
        task = tasks[m["ActivityId"]]
        assert task["TaskSubtype"] == "Email" and m["Id"].startswith("02s")
        assert m["MessageDate"] == task["CompletedDateTime"] and m["Subject"] == task["Subject"].removeprefix(
            "Email: ")
        assert m["SystemModstamp"] == (m["LastOpenedDate"] or m["MessageDate"])
    rows = sf.query("SELECT Id, ActivityId, FromAddress FROM EmailMessage WHERE Incoming = true ORDER BY Id")
    assert rows["totalSize"] == kinds[EngagementKind.EMAIL_REPLY]
    incoming = sorted((m for m in messages if m["Incoming"]), key=lambda m: m["Id"])
    assert [r["ActivityId"] for r in rows["records"]] == [m["ActivityId"] for m in incoming]
    assert all(r["FromAddress"] == m["FromAddress"] for r, m in zip(rows["records"], incoming, strict=True))


# ------------------------------------------------------------------ connector + mapping


def test_each_email_is_one_engagement_keyed_by_its_task_from_either_side(emu, make_connector) -> None:
    conn = make_connector()
    pages = list(conn.pull({}))
    messages = {m["ActivityId"]: m for m in emu.records("EmailMessage")}
    tasks = {t["Id"]: t for t in emu.records("Task")}
    mapped = _engagements(pages)
    ids = Counter(e.id for e in mapped)
    from_messages = {e.id: e for p in pages if p.stream == "EmailMessage" for e in map_page(p).engagements}
    from_tasks = {e.id: e for p in pages if p.stream == "Task" for e in map_page(p).engagements}
    assert set(from_messages) == set(messages)  # keyed by the Task (ActivityId), not the message
    for task_id, m in messages.items():
        assert ids[task_id] == 2 and from_tasks[task_id] == from_messages[task_id]  # one row after the upsert
        e = from_messages[task_id]
        assert e.contact_id == tasks[task_id]["WhoId"] and e.kind == email_kind(m)
        if e.kind is EngagementKind.EMAIL_OPEN:
            assert e.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.000+0000") == m["FirstOpenedDate"]
    unlinked = [t for t in tasks.values() if t["TaskSubtype"] == "Email" and t["Id"] not in messages]
    assert unlinked and all(from_tasks[t["Id"]].kind is EngagementKind.EMAIL_REPLY for t in unlinked)


def test_a_later_pull_of_either_side_never_counts_an_email_twice(emu, make_connector, tmp_path: Path) -> None:
    state = State(f"sqlite:///{tmp_path}/state.db")
    conn = make_connector()
    watermarks: dict[str, str] = {}
    for page in conn.pull({}):
        with state.tx():
            state.upsert_engagements([e for e in map_page(page).engagements if e.contact_id])
        if page.cursor:
            watermarks[page.stream] = page.cursor
    total = state.count_engagements("salesforce")
    state.clear_dirty("salesforce", state.dirty("salesforce"))
    # The prospect opens a tracked email nobody had opened: the message's open dates (and stamp) move.
    unopened = next(m for m in emu.records("EmailMessage") if email_kind(m) is EngagementKind.OTHER)
    opened_at = datetime(2026, 4, 30, 9, 30, tzinfo=UTC)
    with emu.app.lock:
        emu.store.commit_update("EmailMessage", unopened["Id"], {"FirstOpenedDate": opened_at,
                                                                  "LastOpenedDate": opened_at})
    later = [p for p in make_connector().pull(watermarks) if p.stream in ("Task", "EmailMessage")]
    with state.tx():
        touched = state.upsert_engagements([e for p in later for e in map_page(p).engagements])
    who = emu.record("Task", unopened["ActivityId"])["WhoId"]
    assert touched == [who] and state.dirty("salesforce") == [who]  # rescored: the email is now an open
    assert state.count_engagements("salesforce") == total  # same id: still one engagement for that email
    [email] = [e for e in state.engagements_for("salesforce", [who])[who] if e.id == unopened["ActivityId"]]
    assert email.kind is EngagementKind.EMAIL_OPEN and email.occurred_at == opened_at
    # Pulling the Task side again (a rep edits the task) maps to the same engagement: nothing new, nothing lost.
    task_pages = list(make_connector().pull_stream("Task", None))
    with state.tx():
        assert state.upsert_engagements([e for e in _engagements(task_pages) if e.contact_id]) == []
    assert state.count_engagements("salesforce") == total


def test_an_org_without_email_message_access_counts_tasks_alone(emu, make_connector) -> None:
    with emu.app.lock:
        emu.store.tables.pop("EmailMessage")  # INVALID_TYPE, as for a user without access to the object
    conn = make_connector()
    pages = list(conn.pull({}))
    [page] = [p for p in pages if p.stream == "EmailMessage"]
    assert page.records == [] and page.cursor is None and page.meta["unavailable"].startswith("INVALID_TYPE")
    email_tasks = [t for t in emu.records("Task") if t["TaskSubtype"] == "Email"]
    got = {e.id: e for e in _engagements(pages)}
    assert all(got[t["Id"]].kind is EngagementKind.EMAIL_REPLY for t in email_tasks)


def test_an_email_field_hidden_by_field_level_security_is_dropped(emu, make_connector) -> None:
    with emu.app.lock:  # describe no longer lists it, and selecting it is INVALID_FIELD, as under FLS
        obj = emu.store.schema["EmailMessage"]
        del obj.fields["IsBounced"]
        obj.__dict__.pop("_fold", None)
    pages = list(make_connector().pull({}))
    messages = {m["ActivityId"] for m in emu.records("EmailMessage")}
    from_tasks = {e.id for p in pages if p.stream == "Task" for e in map_page(p).engagements}
    from_messages = {e.id for p in pages if p.stream == "EmailMessage" for e in map_page(p).engagements}
    assert messages == from_messages and messages <= from_tasks


# ------------------------------------------------------------------ extra fields


def test_extra_fields_are_selected_and_land_in_contact_extra(emu, make_connector) -> None:
    emu.add_custom_field("Lead", "Course__c", label="Course")
    emu.add_custom_field("Contact", "Seats__c", "double", label="Seats")
    leads = [r["Id"] for r in emu.records("Lead") if not r["IsConverted"]][:3]
    contact = emu.records("Contact")[0]["Id"]
    writer = make_connector()
    changes = [SetFields("salesforce", "Lead", i, {"Course__c": FieldChange(None, f"Python {n}")})
               for n, i in enumerate(leads)]
    changes.append(SetFields("salesforce", "Contact", contact, {"Seats__c": FieldChange(None, "12")}))
    assert all(r.ok for r in writer.apply(changes))
    conn = make_connector(extra_fields={"Lead": ["Course__c"], "Contact": ["Seats__c"]})
    assert conn.missing_fields() == []  # start-up: the extras exist
    pages = [p for p in conn.pull({}) if p.stream in ("Lead", "Contact")]
    contacts = {c.id: c for p in pages for c in map_page(p).contacts}
    assert [contacts[i].extra["Course__c"] for i in leads] == ["Python 0", "Python 1", "Python 2"]
    assert contacts[contact].extra["Seats__c"] == "12" and contacts[contact].extra["AccountId"]
    others = [c for c in contacts.values() if c.object_type == "Lead" and c.id not in leads]
    assert others and all(c.extra["Course__c"] is None for c in others)


def test_unknown_extra_fields_are_a_config_error_naming_them(emu, make_connector) -> None:
    emu.add_custom_field("Lead", "Course__c")
    conn = make_connector(extra_fields={"Lead": ["Course__c", "Cours__c", "Budget__c"]})
    with pytest.raises(ConfigError) as err:
        conn.missing_fields()
    assert "Cours__c, Budget__c" in str(err.value) and err.value.code == "UNKNOWN_FIELDS"
    with pytest.raises(ConfigError):  # a pull without start-up: the refused query's describe says the same
        list(make_connector(extra_fields={"Lead": ["Budget__c"]}).pull_stream("Lead", None))
    with pytest.raises(ConfigError) as err:
        make_connector(extra_fields={"Task": ["Course__c"]})
    assert "Task" in str(err.value)


def test_overlap_window_is_harmless_for_emails(emu, make_connector) -> None:
    """Re-reading the last minute (overlap) re-maps the same emails to the same ids."""
    conn = make_connector(overlap_s=3600)
    newest = max(m["SystemModstamp"] for m in emu.records("EmailMessage"))
    since = (datetime.fromisoformat(newest) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    first = _engagements(list(conn.pull_stream("EmailMessage", since)))
    second = _engagements(list(conn.pull_stream("EmailMessage", since)))
    assert first and first == second


# ------------------------------------------------------------------ mapping alone


def test_email_mapping_kinds_ids_and_the_address_fallback() -> None:
    base = {"Id": "02s1", "Subject": "Re: pricing", "MessageDate": "2026-04-01T10:00:00.000+0000",
            "CreatedDate": "2026-04-01T10:00:00.000+0000", "SystemModstamp": "2026-04-02T08:00:00.000+0000"}
    opened = {**base, "ActivityId": "00T1", "Incoming": False, "IsTracked": True,
              "FirstOpenedDate": "2026-04-01T12:00:00.000+0000", "ToAddress": "ada@example.com; bob@example.com",
              "Activity": {"Id": "00T1", "WhoId": "00Q1"}}
    reply = {**base, "Id": "02s2", "Incoming": True, "FromAddress": "Ada@Example.com", "ToAddress": "rep@x.com"}
    unopened = {**base, "Id": "02s3", "ActivityId": "00T3", "Incoming": False, "IsTracked": True,
                "Activity": {"Id": "00T3", "WhoId": "003A"}}
    page = map_page(RawPage("EmailMessage", [opened, reply, unopened]))
    assert [(e.id, e.contact_id, e.kind, e.contact_email) for e in page.engagements] == [
        ("00T1", "00Q1", EngagementKind.EMAIL_OPEN, None),
        ("02s2", "", EngagementKind.EMAIL_REPLY, "ada@example.com"),  # no Task: its own id, matched by address
        ("00T3", "003A", EngagementKind.OTHER, None)]
    assert page.engagements[0].occurred_at == datetime(2026, 4, 1, 12, tzinfo=UTC) and not page.issues
    task = {"Id": "00T1", "WhoId": "00Q1", "TaskSubtype": "Email", "Subject": "Email: Re: pricing",
            "CompletedDateTime": "2026-04-01T10:00:00.000+0000", "EmailMessage": {
                k: v for k, v in opened.items() if k != "Activity"}}
    assert map_page(RawPage("Task", [task])).engagements == page.engagements[:1]  # the same engagement
