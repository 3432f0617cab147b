"""Follow-up task text within HubSpot's limits: a 200,030-character subject is cut, NULs never sent."""

from __future__ import annotations

from datetime import UTC, datetime

from mapping.model import CreateTask

HUGE = "Follow up: " + "x" * 200_000 + "\x00 [end]" + "y" * 12


def _task(contact_id: str, subject: str, body: str) -> CreateTask:
    return CreateTask("hubspot", "contacts", contact_id, "70000001", "hubspot:1:lead->sql", subject, body,
                      datetime(2026, 11, 2, 9, tzinfo=UTC))


def test_task_subject_and_body_are_cut_to_the_text_limit_and_lose_nuls(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    [result] = conn.apply([_task(emu.contact_ids()[0], HUGE, "Ann\x00 asked for a demo\n" + "z" * 70_000)])
    assert result.ok
    [task] = emu.tasks()
    subject, body = task["properties"]["hs_task_subject"], task["properties"]["hs_task_body"]
    assert len(subject) == 65_536 and subject.startswith("Follow up: xxx") and subject.endswith("…")
    assert len(body) == 65_536 and body.startswith("Ann asked for a demo\nzzz")
    assert "\x00" not in subject + body


def test_short_task_text_is_sent_as_it_is(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    conn.apply([_task(emu.contact_ids()[0], "Call: SQL reached", "Pricing x3\n\tthen demo")])
    [task] = emu.tasks()
    assert (task["properties"]["hs_task_subject"], task["properties"]["hs_task_body"]) == (
        "Call: SQL reached", "Pricing x3\n\tthen demo")
