"""Start both emulators together, for `leadsync sandbox serve`, the demo, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox import bulk
from sandbox.admin import add_hubspot_routes, add_salesforce_routes
from sandbox.hubspot import HubSpotEmulator
from sandbox.hubspot import seeding as hs_seeding
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce import data as sf_data
from sandbox.salesforce.schema import build_schema
from sandbox.seed import default_anchor
from sandbox.server import Fault

HUBSPOT_TOKEN = "pat-sandbox-00000000-0000-0000-0000-000000000000"
SALESFORCE_SESSION = "00Dsandbox!AQ0AQsandboxsessiontoken"


@dataclass
class Sandbox:
    hubspot: HubSpotEmulator
    salesforce: SalesforceEmulator
    hubspot_url: str
    salesforce_url: str

    def env(self) -> dict[str, str]:
        """The settings that point leadsync at this sandbox (sandbox credentials only)."""
        return {
            "LEADSYNC_HUBSPOT__ACCESS_TOKEN": HUBSPOT_TOKEN,
            "LEADSYNC_HUBSPOT__BASE_URL": self.hubspot_url,
            "LEADSYNC_SALESFORCE__INSTANCE_URL": self.salesforce_url,
            "LEADSYNC_SALESFORCE__SESSION_ID": SALESFORCE_SESSION,
            "LEADSYNC_SALESFORCE__CA_BUNDLE": str(self.salesforce.ca_pem_path),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "hubspot": {"base_url": self.hubspot_url, "access_token": HUBSPOT_TOKEN,
                        "oauth": {"client_id": self.hubspot.oauth.client_id,
                                  "client_secret": self.hubspot.oauth.client_secret,
                                  "refresh_token": self.hubspot.oauth.refresh_token,
                                  "token_url": f"{self.hubspot_url}/oauth/v1/token"}},
            "salesforce": {
                "instance_url": self.salesforce_url,
                "session_id": SALESFORCE_SESSION,
                "ca_bundle": str(self.salesforce.ca_pem_path),
                "oauth": {"consumer_key": self.salesforce.oauth.consumer_key,
                          "consumer_secret": self.salesforce.oauth.consumer_secret,
                          "refresh_token": self.salesforce.oauth.refresh_token,
                          "token_url": f"{self.salesforce_url}/services/oauth2/token"},
            },
            "env": self.env(),
        }

    def api_calls(self) -> dict[str, int]:
        return {"hubspot": self.hubspot.app.api_calls(), "salesforce": self.salesforce.app.api_calls()}

    def stop(self) -> None:
        self.hubspot.stop()
        self.salesforce.stop()


def parse_fault(text: str) -> tuple[str, Fault]:
    """`CRM:ENDPOINT=STATUS[@RATE][xCOUNT]`, `CRM:ENDPOINT=drop[@RATE]`, `CRM:ENDPOINT=+MSms` (latency) or
    `CRM:ENDPOINT=lateMSms` (commit late: processed after MS ms, the answer never sent).

    ENDPOINT is a route name from `/_sandbox/requests` or `*`; e.g. `hubspot:contacts.list=503@0.2`,
    `salesforce:*=drop@0.05`, `hubspot:*=+200ms`, `salesforce:query=500x3`.
    """
    try:
        target, action = text.split("=", 1)
        crm, endpoint = target.split(":", 1)
        count = None
        if "x" in action and not action.startswith(("+", "late")):
            action, count_text = action.rsplit("x", 1)
            count = int(count_text)
        rate = 1.0
        if "@" in action:
            action, rate_text = action.split("@", 1)
            rate = float(rate_text)
        if action.startswith("+") and action.endswith("ms"):
            return crm, Fault(endpoint=endpoint, latency_ms=int(action[1:-2]), rate=rate, remaining=count)
        if action.startswith("late") and action.endswith("ms"):
            return crm, Fault(endpoint=endpoint, commit_late_ms=int(action[4:-2]), rate=rate, remaining=count)
        if action == "drop":
            return crm, Fault(endpoint=endpoint, drop=True, rate=rate, remaining=count)
        status = int(action)
        body = {"status": "error", "message": f"injected {status}"} if crm == "hubspot" else \
            [{"message": f"injected {status}", "errorCode": "SERVER_UNAVAILABLE"}]
        return crm, Fault(endpoint=endpoint, status=status, body=body, rate=rate, remaining=count)
    except ValueError as exc:
        raise ValueError(f"fault {text!r}: expected CRM:ENDPOINT=STATUS[@RATE][xCOUNT], =drop, =+MSms or =lateMSms") from exc


def shared_pass(seed: int, contacts: int, anchor: datetime, hubspot: hs_seeding.Builder,
                context: sf_data.Context) -> Iterator[list[sf_data.Part]]:
    """One pass over the people for both emulators (`sandbox.bulk`): each person is generated once, not once
    per CRM. Yields the Salesforce chunks, so the org places them while workers make the next ones, and
    feeds the HubSpot builder on the way."""
    for hs_part, sf_part in bulk.chunks(seed, contacts, anchor, [hs_seeding.job(seed, anchor), sf_data.job(context)]):
        hubspot.feed(hs_part)
        yield sf_part


def start_sandbox(
    contacts: int = 2000,
    seed: int = 1,
    anchor: datetime | None = None,
    host: str = "127.0.0.1",
    hubspot_port: int = 0,
    salesforce_port: int = 0,
    faults: tuple[str, ...] = (),
    state_dir: str | Path | None = None,
    field_history: bool = True,
    **hubspot_kw: Any,
) -> Sandbox:
    """Both emulators on free ports. With `state_dir`, their records persist there across restarts.
    `field_history=False`: a Salesforce org that tracks no Lead/Contact field history (no history rows)."""
    anchor = anchor or default_anchor()
    files: dict[str, str | None] = {"hubspot": None, "salesforce": None}
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        files = {crm: str(Path(state_dir) / f"{crm}.json") for crm in files}
    builder, sf_prepared = None, None
    restored = all(f is not None and Path(f).exists() for f in files.values())  # both load, neither seeds
    if contacts >= bulk.PARALLEL_MIN and not restored and field_history:
        builder = hs_seeding.Builder(seed, anchor)
        context = sf_data.default_context(build_schema(), anchor, seed)  # what a default org's loader will have
        sf_prepared = sf_data.Prepared(context, shared_pass(seed, contacts, anchor, builder, context))
    sf = SalesforceEmulator(seed=seed, contacts=contacts, anchor=anchor, session_id=SALESFORCE_SESSION,
                            state_file=files["salesforce"], prepared=sf_prepared, field_history=field_history)
    hs_seeded = None
    if builder is not None and sf_prepared is not None:
        with bulk.paused_gc(0):
            for _ in sf_prepared:  # the org did not take the chunks (it had saved state): HubSpot still needs them
                pass
            hs_seeded = builder.finish()
    hs = HubSpotEmulator(seed=seed, contacts=contacts, anchor=anchor, token=HUBSPOT_TOKEN,
                         state_file=files["hubspot"], seeded=hs_seeded, **hubspot_kw)
    del hs_seeded
    add_hubspot_routes(hs)
    add_salesforce_routes(sf)
    for text in faults:
        crm, fault = parse_fault(text)
        {"hubspot": hs, "salesforce": sf}[crm].app.faults.append(fault)
    hs_url = hs.start(host=host, port=hubspot_port)
    sf_url = sf.start(host=host, port=salesforce_port)
    return Sandbox(hs, sf, hs_url, sf_url)
