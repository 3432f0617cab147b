"""The peer extractors the side-by-side bench runs: pinned packages, how each is started, what it reads.

Versions are pinned to what the package index served when the bench was written
(/work/.library/env/packages/pypi.tsv lists the same names). Streams are the person and engagement
streams each peer has that the sandbox holds data for: HubSpot contacts (+ meetings / email events),
Salesforce Lead and Contact (+ Task, Event, CampaignMember).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["singer", "airbyte"]


@dataclass(frozen=True)
class Peer:
    name: str  # the venv's folder under the cache dir, and the row's name in the table
    package: str
    version: str
    crm: Literal["hubspot", "salesforce"]
    protocol: Protocol
    executable: str  # console script inside the venv
    streams: tuple[str, ...]  # stream names to select, as the peer names them
    extra_requirements: tuple[str, ...] = field(default=())  # pip requirements beside the package, if any
    catalog_flag: str = "--catalog"  # singer-io's taps read the catalog from `--properties`

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


PEERS: tuple[Peer, ...] = (
    Peer("meltano-tap-hubspot", "meltano-tap-hubspot", "0.10.1", "hubspot", "singer", "tap-hubspot",
         ("contacts", "meetings")),
    Peer("tap-hubspot", "tap-hubspot", "4.5.0", "hubspot", "singer", "tap-hubspot",
         ("contacts", "email_events"), catalog_flag="--properties"),
    Peer("airbyte-source-hubspot", "airbyte-source-hubspot", "5.7.0", "hubspot", "airbyte", "source-hubspot",
         ("contacts", "engagements_meetings", "email_events")),
    Peer("tap-salesforce", "tap-salesforce", "2.8.1", "salesforce", "singer", "tap-salesforce",
         ("Lead", "Contact", "Task", "Event", "CampaignMember"), catalog_flag="--properties"),
    Peer("airbyte-source-salesforce", "airbyte-source-salesforce", "2.10.3", "salesforce", "airbyte",
         "source-salesforce", ("Lead", "Contact", "Task", "Event", "CampaignMember")),
)


def by_name(name: str) -> Peer:
    for peer in PEERS:
        if peer.name == name:
            return peer
    raise KeyError(f"no peer named {name!r}; known: {', '.join(p.name for p in PEERS)}")
