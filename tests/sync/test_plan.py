"""The pure diff: what to write, and when a hand-off task is due."""

from __future__ import annotations

from datetime import datetime, timezone

from mapping.model import Contact, Stage
from sync.plan import diff_fields, plan_contact, task_key, task_text

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def contact(**kw) -> Contact:
    base = dict(source="hubspot", id="7", email="ana@acme.com", first_name="Ana", last_name="Silva",
                company="Acme", lifecycle_stage=Stage.LEAD, owner_id="42",
                managed={"lifecyclestage": "lead", "leadsync_score": "10"})
    base.update(kw)
    return Contact(**base)


def test_equal_values_make_no_change():
    assert diff_fields({"a": "10", "b": None}, {"a": "10.0", "b": ""}) == {}


def test_changed_values_carry_before_and_after():
    (name, fc), = diff_fields({"a": "10"}, {"a": "12"}).items()
    assert (name, fc.before, fc.after) == ("a", "10", "12")


def test_lead_to_sql_sets_fields_and_asks_for_one_task():
    p = plan_contact(contact(), {"lifecyclestage": "salesqualifiedlead", "leadsync_score": "80"}, Stage.SQL,
                     ("requested a demo",), ("subj", "body"), NOW)
    assert p.set_fields is not None and p.set_fields.stage_to == Stage.SQL
    assert p.task is not None and p.task.owner_id == "42"
    assert p.task.idempotency_key == task_key("hubspot", "contacts", "7", Stage.SQL)
    assert p.task.due > NOW


def test_lead_to_mql_makes_no_task():
    p = plan_contact(contact(), {"lifecyclestage": "marketingqualifiedlead"}, Stage.MQL, (), ("s", "b"), NOW)
    assert p.set_fields is not None and p.task is None


def test_already_sql_makes_no_new_task_even_if_score_moves():
    c = contact(lifecycle_stage=Stage.SQL, managed={"lifecyclestage": "salesqualifiedlead", "leadsync_score": "80"})
    p = plan_contact(c, {"lifecyclestage": "salesqualifiedlead", "leadsync_score": "85"}, Stage.SQL, (), ("s", "b"), NOW)
    assert p.task is None and set(p.set_fields.fields) == {"leadsync_score"}


def test_read_only_contact_is_left_alone():
    p = plan_contact(contact(read_only=True), {"leadsync_score": "99"}, Stage.SQL, (), ("s", "b"), NOW)
    assert p.set_fields is None and p.task is None


def test_task_key_is_stable_and_per_transition():
    assert task_key("hubspot", "contacts", "7", Stage.SQL) == task_key("hubspot", "contacts", "7", Stage.SQL)
    assert task_key("hubspot", "contacts", "7", Stage.SQL) != task_key("salesforce", "Lead", "7", Stage.SQL)


def test_task_text_says_why_now_and_interests():
    subject, body = task_text(contact(title="VP Marketing"), "requested a demo; visited /pricing 3× in 7 days",
                              ("/pricing", "ebook-lead-scoring-guide"), 88)
    assert "Ana Silva at Acme" in subject
    assert "requested a demo" in body and "/pricing" in body and "ebook-lead-scoring-guide" in body
