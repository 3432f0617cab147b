"""HubSpot owners through the real client: active and archived (deactivated) owners, paged."""

from __future__ import annotations

from sandbox.seed import OWNERS


def test_owners_are_read_with_their_activity_across_pages(new_emu, make_connector, sdk):
    emu = new_emu()
    page = sdk(emu).crm.owners.owners_api.get_page(limit=3)
    assert len(page.results) == 3 and page.paging.next.after == "3"  # the real client's paging model
    conn = make_connector(emu)
    states = conn.owners()
    assert states == {o.hubspot_id: o.active for o in OWNERS}
    assert [i for i, active in states.items() if not active] == [o.hubspot_id for o in OWNERS if not o.active]
    assert conn.api_calls == 2  # one page of up to 500 each for active and archived owners
