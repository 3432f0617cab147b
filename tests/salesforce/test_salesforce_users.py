"""Salesforce users for routing: `User.IsActive`, one query."""

from __future__ import annotations

from sandbox.seed import OWNERS


def test_users_are_read_with_is_active_in_one_query(make_connector):
    conn = make_connector()
    before = conn.api_calls
    states = conn.owners()
    assert states == {o.salesforce_id: o.active for o in OWNERS}
    assert conn.api_calls - before == 1
