"""HubSpot owners (`GET /crm/v3/owners`): who can own a record, and who no longer can (`archived`)."""

from __future__ import annotations

from connectors.hubspot.transport import Transport


class Owners:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def states(self) -> dict[str, bool]:
        """Owner id → active. Active owners come with `archived=false`, deactivated users' owners only with
        `archived=true` (HubSpot's owners guide); pages of up to 500 followed by `paging.next.after`."""
        api = self.t.api("crm.owners.owners_api")
        out: dict[str, bool] = {}
        for archived in (False, True):
            after = None
            while True:
                kwargs = {"limit": 500, "archived": archived, **({"after": after} if after else {})}
                _, body = self.t.call(api.get_page, **kwargs)
                for o in body.get("results") or []:
                    out[str(o["id"])] = not archived and not o.get("archived")
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return out
