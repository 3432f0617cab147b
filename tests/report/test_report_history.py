"""The report's history section over a known store with CRM history, deals and owners, worked out by hand.

Window: the 4 Monday-weeks up to NOW (Wed 2026-03-18 12:00): W1 = 02-23, W2 = 03-02, W3 = 03-09, W4 = 03-16.
Persons: P1 = h1 + s1 (one email), P2 = h2, P3 = s3 (a converted Lead, no field history), P4 = s4.
First entries per person (origin):
  P1 lead 01-01 (s1 crm_history), mql 02-24 10:00 W1 (h1 date property), sql 03-03 10:00 W2 (h1),
     opportunity 03-04 12:00 W2 (s1's deal opened, before h1's 03-05 date), customer 03-16 00:00 W4 (deal won)
  P2 lead 02-25 W1 (date property), mql 03-10 09:00 W3 (leadsync's write)
  P3 lead 03-02 08:00 W2 (created_fallback), sql 03-12 00:00 W3 (converted), opportunity 03-12 00:00 W3 (deal)
  P4 lead 2025-12-01, mql 02-10 (before the window), sql 02-26 W1, opportunity 02-27 W1 (open deal)
"""

from __future__ import annotations

import pytest

from mapping.model import Contact, Opportunity, Stage, StageEntry
from sync.report import build_report
from sync.report_render import terminal_tables
from sync.stage_history import person_histories
from sync.state import State
from tests.report.history import NOW, t

CONTACTS = [  # source, id, email, owner, created, stage now
    ("hubspot", "h1", "p1@acme.com", "o1", "2026-01-05 00:00", "opportunity"),
    ("salesforce", "s1", "P1@acme.com", "005A", "2026-01-01 00:00", "customer"),
    ("hubspot", "h2", "p2@beta.io", "o1", "2026-02-25 00:00", "mql"),
    ("salesforce", "s3", "p3@gamma.com", "005A", "2026-03-02 08:00", "lead"),
    ("salesforce", "s4", "p4@delta.com", None, "2025-12-01 00:00", "opportunity"),
]
ENTRIES = [  # source, id, stage, at, origin
    ("hubspot", "h1", "lead", "2026-01-05 00:00", "crm_date_property"),
    ("hubspot", "h1", "mql", "2026-02-24 10:00", "crm_date_property"),
    ("hubspot", "h1", "sql", "2026-03-03 10:00", "crm_date_property"),
    ("hubspot", "h1", "opportunity", "2026-03-05 00:00", "crm_date_property"),
    ("salesforce", "s1", "lead", "2026-01-01 00:00", "crm_history"),
    ("salesforce", "s1", "lead", "2026-01-01 00:00", "created_fallback"),
    ("hubspot", "h2", "lead", "2026-02-25 00:00", "crm_date_property"),
    ("salesforce", "s3", "lead", "2026-03-02 08:00", "created_fallback"),
    ("salesforce", "s3", "sql", "2026-03-12 00:00", "converted"),
    ("salesforce", "s4", "lead", "2025-12-01 00:00", "crm_history"),
    ("salesforce", "s4", "mql", "2026-02-10 00:00", "crm_history"),
    ("salesforce", "s4", "sql", "2026-02-26 00:00", "crm_history"),
]
DEALS = [  # id, contact, created, close, closed, won
    ("006a", "s1", "2026-03-04 12:00", "2026-03-16 00:00", True, True),
    ("006b", "s3", "2026-03-12 00:00", "2026-03-17 00:00", True, False),
    ("006c", "s4", "2026-02-27 00:00", "2026-04-30 00:00", False, False),
]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    s = State(f"sqlite:///{tmp_path_factory.mktemp('history') / 'state.db'}")
    with s.tx():
        for source, cid, email, owner, created, stage in CONTACTS:
            s.upsert_contacts([Contact(source=source, id=cid, object_type="contacts" if source == "hubspot" else "Lead",
                                       email=email, owner_id=owner, created_at=t(created), updated_at=t(created),
                                       lifecycle_stage=Stage(stage))], "run-1")
        s.add_stage_entries([StageEntry(src, cid, st, t(at), o) for src, cid, st, at, o in ENTRIES], "run-1")
        s.add_stage_entries([StageEntry(src, cid, st, t(at), o) for src, cid, st, at, o in ENTRIES], "run-2")  # again
        s.add_stage_change("hubspot", "h2", "lead", "mql", "run-1")
        s.db.execute("UPDATE stage_history SET at=? WHERE tenant='default' AND contact_id='h2'",
                     (t("2026-03-10 09:00").isoformat(),))
        s.upsert_opportunities([Opportunity("salesforce", i, c, t(a), t(b), closed, won, None, 1000.0, "005A")
                                for i, c, a, b, closed, won in DEALS], "run-1")
        s.save_owners("hubspot", [("o1", "Maya Reed", "maya.reed@example-saas.com", True)])
        s.save_owners("salesforce", [("005A", "Jonas Berg", "jonas.berg@example-saas.com", True)])
    yield s
    s.close()


@pytest.fixture(scope="module")
def report(state):
    return build_report(state, now=NOW, weeks=4)


def test_entries_are_kept_once_and_read_back_with_origins(state):
    entries = state.stage_history()
    assert len(entries) == len(ENTRIES) + 1  # the second add changed nothing; leadsync's write is there too
    assert [(e.stage, e.origin) for e in state.stage_history("hubspot", ["h2"])] == [
        ("lead", "crm_date_property"), ("mql", "leadsync_write")]


def test_person_history_takes_the_first_entry_across_records_and_deals(state):
    people = {tuple(sorted(h.records)): h for h in person_histories(state).values()}
    p1 = people[("hubspot:h1", "salesforce:s1")]
    assert p1.at("lead") == t("2026-01-01 00:00") and p1.origin("lead") == "crm_history"  # tie: history first
    assert p1.at("opportunity") == t("2026-03-04 12:00") and p1.origin("opportunity") == "crm_history"
    assert p1.at("customer") == t("2026-03-16 00:00")
    assert people[("salesforce:s3",)].origin("sql") == "converted"
    assert len(people) == 4


def test_weekly_entries_per_stage(report):
    h = report["history"]
    assert h["persons"] == 4
    stages = ["lead", "mql", "sql", "opportunity", "customer"]
    assert [[w[s] for s in stages] for w in h["weeks"]] == [
        [1, 1, 1, 1, 0], [1, 0, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1]]
    assert h["total"] == {"lead": 2, "mql": 2, "sql": 3, "opportunity": 3, "customer": 1}


def test_cohort_conversion_lead_to_customer(report):
    h = report["history"]

    def row(c):
        return [(c[s]["entered"], c[s][f"to_{n}"]) for s, n in
                (("lead", "mql"), ("mql", "sql"), ("sql", "opportunity"), ("opportunity", "customer"))]
    assert [row(c) for c in h["cohorts"]] == [
        [(1, 1), (1, 1), (1, 1), (1, 0)],
        [(1, 1), (0, 0), (1, 1), (1, 1)],
        [(0, 0), (1, 0), (1, 1), (1, 0)],
        [(0, 0), (0, 0), (0, 0), (0, 0)],
    ]
    assert h["cohorts"][1]["mql"]["rate"] is None  # nobody entered: no rate, not 0 %
    total = h["cohort_total"]
    assert [(total[s]["entered"], total[s]["rate"]) for s in ("lead", "mql", "sql", "opportunity")] == [
        (2, 1.0), (2, 0.5), (3, 1.0), (3, 0.333)]


def test_time_in_stage(report):
    assert report["history"]["time_in_stage"] == {
        "lead_to_mql": {"persons": 2, "median_days": 33.9},  # P1 54.42 d, P2 13.38 d
        "mql_to_sql": {"persons": 2, "median_days": 11.5},  # P1 7.0, P4 16.0
        "sql_to_opportunity": {"persons": 3, "median_days": 1.0},  # P1 1.08, P3 0.0, P4 1.0
        "opportunity_to_customer": {"persons": 1, "median_days": 11.5},
    }


def test_deals_and_origins(report):
    h = report["history"]
    assert h["deals"] == {"opened": 3, "won": 1, "lost": 1, "open_now": 1, "win_rate": 0.5,
                          "median_days_to_win": 11.5}
    zero = dict.fromkeys(["crm_history", "crm_date_property", "converted", "created_fallback", "leadsync_write"], 0)
    assert h["origins"] == {
        "lead": {**zero, "crm_history": 2, "crm_date_property": 1, "created_fallback": 1},
        "mql": {**zero, "crm_history": 1, "crm_date_property": 1, "leadsync_write": 1},
        "sql": {**zero, "crm_history": 1, "crm_date_property": 1, "converted": 1},
        "opportunity": {**zero, "crm_history": 3},
        "customer": {**zero, "crm_history": 1},
    }


def test_record_flow_counts_crm_history_from_the_first_backfill(report):
    total = report["flow"]["total"]
    assert (total["new_mql"], total["new_sql"]) == (2, 3)  # h1's MQL from HubSpot's date, s3 and s4 from Salesforce
    assert [w["new_sql"] for w in report["flow"]["weeks"]] == [1, 1, 1, 0]


def test_forecast_takes_the_opportunity_rate_from_closed_deals(report, state, monkeypatch):
    opp = report["forecast"]["by_stage"]["opportunity"]
    assert opp["deals"] == {"won": 1, "lost": 1, "open": 1, "rate": 0.5}
    assert opp["method"] != "deals"  # two closed deals are too few
    import sync.report as report_mod

    monkeypatch.setattr(report_mod, "MIN_DECIDED", 2)
    opp = build_report(state, now=NOW, weeks=4)["forecast"]["by_stage"]["opportunity"]
    assert (opp["method"], opp["rate"], opp["now"], opp["expected"]) == ("deals", 0.5, 2, 1.0)


def test_owner_names_replace_ids(report):
    assert sorted(report["funnel"]["by_owner"]) == ["(no owner)", "Jonas Berg", "Maya Reed"]
    assert report["funnel"]["by_owner"]["Maya Reed"]["mql"] == 1


def test_history_tables_render(report):
    titles = [str(tb.title) for tb in terminal_tables(report)]
    assert any(x.startswith("Funnel history") for x in titles) and "Deals in the window" in titles
