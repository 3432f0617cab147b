"""The report's history figures after a first backfill of both sandbox CRMs, against the seed's own history."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from sandbox.history import timeline
from sandbox.seed import people
from sync.cli import app
from sync.report import build_report
from sync.state import State

runner = CliRunner()
SEED, COUNT = 7, 400  # the conftest sandbox


def test_first_backfill_report_shows_the_seeded_funnel(sandbox_env, tmp_path):
    result = runner.invoke(app, ["backfill", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    anchor = sandbox_env.salesforce.anchor
    state = State(f"sqlite:///{tmp_path}/state.db")
    report = build_report(state, now=anchor, weeks=26)
    since = report["window"]["since"]
    hist = report["history"]
    truth = [(p, timeline(SEED, p, anchor)) for p in people(SEED, COUNT, anchor)]
    deals = [tl.deal for p, tl in truth if p.in_salesforce and tl.deal and (p.sf_object == "Contact" or p.converted_lead)]

    def inside(at) -> bool:
        return since <= at.isoformat() < anchor.isoformat()

    midnight = [d.close_date for d in deals if d.is_closed]
    assert hist["deals"]["opened"] == sum(inside(d.created_at) for d in deals)
    assert hist["deals"]["open_now"] == sum(not d.is_closed for d in deals)
    won = [d for d in deals if d.is_won and since[:10] <= d.close_date.isoformat() < anchor.date().isoformat()]
    assert hist["deals"]["won"] == len(won) and len(midnight) >= len(won)
    # Customers: each seeded customer is one person whose first customer entry is the deal's close day (midnight,
    # never before it opened) or HubSpot's stage date, whichever is earlier.
    customers = [tl for p, tl in truth if tl.customer_at is not None]
    assert customers
    assert hist["total"]["customer"] == sum(inside(tl.customer_at.replace(hour=0, minute=0, second=0, microsecond=0))
                                            or inside(tl.customer_at) for tl in customers)
    assert hist["origins"]["customer"]["leadsync_write"] == 0  # nobody is customer because leadsync said so
    # The MQLs of the first backfill are not all "this week": the CRMs' history dates many of them in the past.
    this_week = hist["weeks"][-1]["mql"]
    assert hist["total"]["mql"] > this_week
    assert hist["origins"]["mql"]["crm_date_property"] > 0
    assert min(w["week_start"] for w in hist["weeks"] if w["opportunity"]) < (anchor - timedelta(days=28)).date().isoformat()
    state.close()
    json.dumps(report)  # JSON-ready
