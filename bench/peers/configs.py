"""Each peer's config (credentials for the sandbox) and its catalog with only the benchmarked streams selected.

Credentials are the sandbox's own throw-away ones (`sandbox.run`, the Salesforce emulator's consumer key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from peers.catalog import Peer

from sandbox.run import HUBSPOT_TOKEN, Sandbox
from sandbox.salesforce.auth import OAuthConfig

#: Seeded contacts are created up to 720 days before the anchor, so this start date takes every record.
HISTORY_DAYS = 730
#: The refresh token the Salesforce emulator's token endpoint accepts (tap-salesforce and Airbyte's source only
#: speak this grant).
SF_REFRESH_TOKEN = OAuthConfig.refresh_token


def start_date(anchor: datetime) -> str:
    return (anchor - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")


def config(peer: Peer, sb: Sandbox, anchor: datetime) -> dict[str, Any]:
    start = start_date(anchor)
    sf = sb.salesforce.oauth
    if peer.name == "meltano-tap-hubspot":
        return {"access_token": HUBSPOT_TOKEN, "start_date": start}
    if peer.name == "tap-hubspot":
        # `api_key` is the private-app token path (sent as a Bearer header); OAuth would need a refresh token.
        return {"api_key": HUBSPOT_TOKEN, "start_date": start, "select_fields_by_default": True}
    if peer.name == "airbyte-source-hubspot":
        return {"credentials": {"credentials_title": "Private App Credentials", "access_token": HUBSPOT_TOKEN},
                "start_date": start, "enable_experimental_streams": False}
    if peer.name == "tap-salesforce":
        return {"client_id": sf.consumer_key, "client_secret": sf.consumer_secret,
                "refresh_token": SF_REFRESH_TOKEN, "start_date": start, "api_type": "REST",
                "select_fields_by_default": True, "is_sandbox": False}
    if peer.name == "airbyte-source-salesforce":
        return {"auth_type": "Client", "client_id": sf.consumer_key, "client_secret": sf.consumer_secret,
                "refresh_token": SF_REFRESH_TOKEN, "is_sandbox": False, "start_date": start}
    raise KeyError(peer.name)


#: Replication keys preferred when a stream offers several (the modification stamps).
PREFERRED_KEYS = ("SystemModstamp", "LastModifiedDate", "lastmodifieddate", "hs_lastmodifieddate", "updatedAt")


def select_singer(catalog: dict[str, Any], streams: tuple[str, ...]) -> dict[str, Any]:
    """Select the wanted streams and every field of theirs; deselect the rest. Where a stream offers
    replication keys but none is chosen (tap-salesforce), choose the modification stamp, INCREMENTAL — as a
    team sets it in Meltano or Stitch; without it the tap re-reads every table in full."""
    found = set()
    for entry in catalog["streams"]:
        name = entry.get("tap_stream_id") or entry["stream"]
        wanted = name in streams
        found.add(name) if wanted else None
        for md in entry.get("metadata", []):
            if md.get("breadcrumb") == [] or wanted:
                md.setdefault("metadata", {})["selected"] = wanted
            if md.get("breadcrumb") == [] and wanted:
                _choose_replication(md["metadata"])
    missing = set(streams) - found
    if missing:
        raise ValueError(f"the peer's catalog has no stream {sorted(missing)}")
    return catalog


def _choose_replication(meta: dict[str, Any]) -> None:
    keys = meta.get("valid-replication-keys") or []
    if keys and not meta.get("replication-key"):
        meta["replication-key"] = next((k for k in PREFERRED_KEYS if k in keys), keys[0])
        meta["replication-method"] = "INCREMENTAL"


def select_airbyte(catalog: dict[str, Any], streams: tuple[str, ...]) -> dict[str, Any]:
    """A configured catalog: the wanted streams, incremental where the source supports it."""
    chosen = []
    for s in catalog["streams"]:
        if s["name"] not in streams:
            continue
        incremental = "incremental" in s.get("supported_sync_modes", [])
        chosen.append({"stream": s, "sync_mode": "incremental" if incremental else "full_refresh",
                       "destination_sync_mode": "append", "cursor_field": s.get("default_cursor_field") or [],
                       "primary_key": s.get("source_defined_primary_key") or []})
    missing = set(streams) - {c["stream"]["name"] for c in chosen}
    if missing:
        raise ValueError(f"the source's catalog has no stream {sorted(missing)}")
    return {"streams": chosen}
