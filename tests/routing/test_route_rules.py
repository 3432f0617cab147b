"""The pure routing rules: each rule, their order, and round-robin fairness over 1,000 hand-offs."""

from __future__ import annotations

from datetime import date

import pytest

from mapping.model import Stage
from sync.route import Availability, Facts, Previous, Rep, RoutingPolicy, Rule, Team, pick, route

TODAY = date(2026, 12, 3)
MAYA = Rep("maya", {"salesforce": "005A", "hubspot": "701"})
JONAS = Rep("jonas", {"salesforce": "005B", "hubspot": "702"})
AISHA = Rep("aisha", {"salesforce": "005C"})
LEO = Rep("leo", {"salesforce": "005D"}, away=((date(2026, 12, 1), date(2026, 12, 10)),))
GRACE = Rep("grace", {"salesforce": "005E"})


def policy(**kw) -> RoutingPolicy:
    base = dict(
        reps={r.name: r for r in (MAYA, JONAS, AISHA, LEO, GRACE)},
        teams={"emea": Team("emea", (("maya", 2), ("jonas", 1))), "na": Team("na", (("aisha", 1), ("leo", 1))),
               "ent": Team("ent", (("grace", 1),))},
        rules=(Rule("enterprise", "ent", min_size=1000),
               Rule("emea", "emea", countries=frozenset({"de", "fr", "germany"})),
               Rule("na-software", "na", countries=frozenset({"us"}), industries=frozenset({"software"}))),
        keep_active_owner=True, fallback="grace", fallback_ids={"salesforce": "00GQUEUE"},
        write_owner={"salesforce": frozenset({Stage.SQL})},
    )
    base.update(kw)
    return RoutingPolicy(**base)


def facts(**kw) -> Facts:
    return Facts(**{"target": "salesforce", **kw})


def test_keeps_an_active_existing_owner():
    a = route(policy(), facts(country="DE", owners=(("salesforce", "005B"),)), Availability(), TODAY, {})
    assert (a.rule, a.owner_id, a.rep) == ("existing-owner", "005B", "jonas")
    assert "kept the existing owner jonas" in a.text()


def test_existing_owner_in_the_other_crm_is_translated_to_the_target():
    a = route(policy(), facts(owners=(("hubspot", "702"),)), Availability(), TODAY, {})
    assert (a.rule, a.owner_id) == ("existing-owner", "005B")


def test_an_unknown_active_owner_in_the_target_crm_is_kept():
    a = route(policy(), facts(owners=(("salesforce", "005ZZZ"),)), Availability(), TODAY, {})
    assert (a.rule, a.owner_id, a.rep) == ("existing-owner", "005ZZZ", None)


@pytest.mark.parametrize("owner, avail, why", [
    ("00GQu0000000001AAA", Availability(), "is a queue"),
    ("005B", Availability({"salesforce": frozenset({"005B"})}, frozenset({"salesforce"})), "inactive"),
    ("005D", Availability(), "away until 2026-12-10"),
])
def test_queue_inactive_and_away_owners_are_not_kept(owner, avail, why):
    a = route(policy(), facts(country="FR", owners=(("salesforce", owner),)), avail, TODAY, {})
    assert a.rule == "emea" and why in a.text()


def test_keep_active_owner_off_routes_anyway():
    a = route(policy(keep_active_owner=False), facts(country="DE", owners=(("salesforce", "005C"),)),
              Availability(), TODAY, {})
    assert a.rule == "emea" and a.rep == "maya"


def test_rules_in_order_first_match_wins():
    # 5,000 employees in Germany: the enterprise rule is listed first
    a = route(policy(), facts(country="DE", company_size=5000), Availability(), TODAY, {})
    assert (a.rule, a.team, a.rep) == ("enterprise", "ent", "grace") and "company size 5000" in a.text()
    a = route(policy(), facts(country="de", company_size=50), Availability(), TODAY, {})
    assert (a.rule, a.team) == ("emea", "emea") and "country de" in a.text()


def test_segment_rule_needs_every_condition():
    assert route(policy(), facts(country="US", industry="Software"), Availability(), TODAY, {}).rule == "na-software"
    # the same country in another industry matches no rule: the fallback rep
    a = route(policy(), facts(country="US", industry="Retail"), Availability(), TODAY, {})
    assert (a.rule, a.rep) == ("fallback", "grace")


def test_away_and_inactive_members_are_skipped_in_round_robin():
    a = route(policy(), facts(country="US", industry="software"), Availability(), TODAY, {"na": {"aisha": 50}})
    assert a.rep == "aisha" and "skipped leo is away until 2026-12-10" in a.text()
    inactive = Availability({"salesforce": frozenset({"005A"})}, frozenset({"salesforce"}))
    a = route(policy(), facts(country="DE"), inactive, TODAY, {})
    assert a.rep == "jonas" and "maya is inactive in salesforce" in a.text()


def test_a_team_with_nobody_available_falls_through_to_the_fallback_queue():
    gone = Availability({"salesforce": frozenset({"005A", "005B", "005E"})}, frozenset({"salesforce"}))
    a = route(policy(), facts(country="DE"), gone, TODAY, {})
    assert (a.rule, a.owner_id, a.rep) == ("fallback", "00GQUEUE", None)
    assert "nobody available" in a.text() and "fallback grace is inactive" in a.text()


def test_no_fallback_leaves_the_crm_default():
    a = route(policy(fallback=None, fallback_ids={}), facts(country="JP"), Availability(), TODAY, {})
    assert (a.rule, a.owner_id) == ("none", None)


def test_previous_assignment_is_kept_while_the_rep_is_available():
    prev = Previous("jonas", "emea", "emea", "2026-11-30T10:00:00+00:00")
    a = route(policy(), facts(country="DE"), Availability(), TODAY, {"emea": {"maya": 0, "jonas": 99}}, prev)
    assert (a.rule, a.rep, a.counted) == ("previous", "jonas", False) and "stable across runs" in a.text()
    gone = Availability({"salesforce": frozenset({"005B"})}, frozenset({"salesforce"}))
    a = route(policy(), facts(country="DE"), gone, TODAY, {}, prev)
    assert a.rep == "maya" and a.counted


def test_a_rep_without_a_user_in_the_target_crm_is_not_picked():
    a = route(policy(), facts(target="hubspot", country="US", industry="software"), Availability(), TODAY, {})
    # aisha and leo have no HubSpot owner id, nor has grace: nobody left, no HubSpot fallback
    assert a.rule == "none" and "aisha has no hubspot user" in a.text()


def test_routing_is_deterministic():
    args = (policy(), facts(country="DE"), Availability(), TODAY, {"emea": {"maya": 3, "jonas": 1}})
    assert route(*args) == route(*args)


@pytest.mark.parametrize("weights", [(2, 1), (3, 2, 1), (1, 1, 1, 1), (5, 1, 3), (7, 2)])
def test_round_robin_fair_within_one_over_1000_hand_offs(weights):
    team = Team("t", tuple((f"r{i}", w) for i, w in enumerate(weights)))
    names = [n for n, _ in team.members]
    counts = dict.fromkeys(names, 0)
    total = sum(weights)
    for n in range(1, 1001):
        counts[pick(team, names, counts)] += 1
        for name, w in team.members:
            assert abs(counts[name] - n * w / total) <= 1, (n, counts)
    assert sum(counts.values()) == 1000


def test_round_robin_fair_after_a_member_returns():
    team = Team("t", (("a", 1), ("b", 1), ("c", 2)))
    counts = {"a": 0, "b": 0, "c": 0}
    for _ in range(200):
        counts[pick(team, ["a", "c"], counts)] += 1  # b away
    assert abs(counts["a"] * 2 - counts["c"]) <= 2
    for _ in range(800):
        counts[pick(team, ["a", "b", "c"], counts)] += 1
    # b catches up towards its share of all 1,000; the others never go below theirs by more than one
    assert counts["a"] >= 250 - 1 and counts["c"] >= 500 - 1 and sum(counts.values()) == 1000
