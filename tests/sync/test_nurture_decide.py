"""The nurture decision, pure: who belongs in nurture, and which of a person's records carry the membership."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

from mapping.model import Contact, Stage
from scoring import default_model, score
from sync.decide import NurturePolicy, PersonPolicy, decide, nurture_records, nurture_wanted
from sync.engine import mapping_for

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MODEL = default_model()
NP = NurturePolicy(targets={"hubspot": "5001", "salesforce": "701000000000001AAA"})


def _person(**kw) -> Contact:
    return Contact(source="hubspot", id="1", email="ana@acme.com", first_name="Ana", last_name="Smith", **kw)


def test_only_enrolling_stages_that_are_not_opted_out_or_disqualified():
    p = _person()
    s = score(MODEL, p, [], NOW)
    assert nurture_wanted(Stage.MQL, p, s, MODEL, NP)
    assert not nurture_wanted(Stage.SQL, p, s, MODEL, NP)  # sales-ready: out of nurture
    assert not nurture_wanted(Stage.LEAD, p, s, MODEL, NP) and not nurture_wanted(None, p, s, MODEL, NP)
    assert not nurture_wanted(Stage.MQL, replace(p, do_not_contact=True), s, MODEL, NP)  # unsubscribed
    assert not nurture_wanted(Stage.MQL, replace(p, lead_status="Closed - Not Converted"), s, MODEL, NP)
    assert nurture_wanted(Stage.LEAD, p, s, MODEL, replace(NP, stages=frozenset({Stage.LEAD, Stage.MQL})))


def test_one_salesforce_record_per_person_the_contact_first_and_every_hubspot_contact():
    records = [
        Contact(source="hubspot", id="1"), Contact(source="salesforce", id="00Q000000000002AAA", object_type="Lead"),
        Contact(source="salesforce", id="003000000000003AAA", object_type="Contact"),
        Contact(source="salesforce", id="00Q000000000004AAA", object_type="Lead", read_only=True),
    ]
    assert nurture_records(records, NP.targets) == {"hubspot:1": True, "salesforce:003000000000003AAA": True,
                                                     "salesforce:00Q000000000002AAA": False}
    assert nurture_records(records, {"hubspot": "5001"}) == {"hubspot:1": True}


def test_decide_marks_each_plan_and_leaves_other_crms_alone():
    hs = Contact(source="hubspot", id="1", email="a@acme.com", lifecycle_stage=Stage.MQL, managed={})
    lead = Contact(source="salesforce", id="00Q000000000002AAA", object_type="Lead", email="a@acme.com",
                   lifecycle_stage=Stage.MQL)
    policy = PersonPolicy(nurture=replace(NP, targets={"salesforce": "701000000000001AAA"}))
    d = decide([hs, lead], {}, MODEL, NOW, NOW, mapping_for, policy)
    by_key = {p.contact.key: p.nurture for p in d.plans}
    assert d.stage is Stage.MQL and by_key == {"hubspot:1": None, "salesforce:00Q000000000002AAA": True}
    unconfigured = decide([hs, lead], {}, MODEL, NOW, NOW, mapping_for, PersonPolicy())
    assert {p.nurture for p in unconfigured.plans} == {None}


def test_settings_name_targets_only_in_configured_crms_and_refuse_bad_values(monkeypatch, tmp_path):
    import pytest

    from sync.settings import Settings, SettingsError

    for key in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-test")
    monkeypatch.setenv("LEADSYNC_NURTURE__HUBSPOT_LIST_ID", "5001")
    monkeypatch.setenv("LEADSYNC_NURTURE__SALESFORCE_CAMPAIGN_ID", "701000000000001AAA")
    policy = Settings().person_policy().nurture
    assert policy is not None and dict(policy.targets) == {"hubspot": "5001"}  # Salesforce is not configured
    assert policy.stages == frozenset({Stage.MQL}) and policy.exit_status is None
    (tmp_path / "leadsync.toml").write_text('[nurture]\nstages = ["other"]\nbatch_size = 500\n')
    with pytest.raises(SettingsError) as bad:
        Settings()
    assert "nurture.stages" in str(bad.value) and "nurture.batch_size" in str(bad.value)
    monkeypatch.delenv("LEADSYNC_NURTURE__HUBSPOT_LIST_ID")
    (tmp_path / "leadsync.toml").write_text("")
    assert Settings().person_policy().nurture is None
