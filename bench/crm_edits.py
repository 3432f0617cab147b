"""Edits a person's tools would make through the CRMs' APIs, for benchmarks of incremental syncs.

`info` is the JSON `leadsync sandbox serve` prints (or `Sandbox.describe()`).
"""

from __future__ import annotations

from collections.abc import Sequence

import requests

TITLE = "VP Revenue Operations"


def _hubspot(info: dict) -> tuple[str, dict[str, str]]:
    hs = info["hubspot"]
    return hs["base_url"], {"Authorization": f"Bearer {hs['access_token']}"}


def _salesforce(info: dict) -> tuple[requests.Session, str, str]:
    sf = info["salesforce"]
    s = requests.Session()
    s.verify = sf["ca_bundle"]
    s.trust_env = False  # REQUESTS_CA_BUNDLE must not override the sandbox's CA
    s.headers["Authorization"] = f"Bearer {sf['session_id']}"
    return s, sf["instance_url"], f"{sf['instance_url']}/services/data/v59.0"


def hubspot_ids(info: dict) -> list[str]:
    base, headers = _hubspot(info)
    ids: list[str] = []
    after = None
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        page = requests.get(f"{base}/crm/v3/objects/contacts", params=params, headers=headers, timeout=30).json()
        ids += [r["id"] for r in page["results"]]
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return ids


def salesforce_lead_ids(info: dict) -> list[str]:
    s, instance, base = _salesforce(info)
    ids: list[str] = []
    url: str | None = f"{base}/query/?q=SELECT+Id+FROM+Lead+WHERE+IsConverted+=+false"
    while url:
        page = s.get(url, timeout=30).json()
        ids += [r["Id"] for r in page["records"]]
        url = instance + page["nextRecordsUrl"] if page.get("nextRecordsUrl") else None
    return ids


def edit_hubspot(info: dict, ids: Sequence[str], title: str = TITLE) -> None:
    base, headers = _hubspot(info)
    for i in range(0, len(ids), 100):
        body = {"inputs": [{"id": cid, "properties": {"jobtitle": title}} for cid in ids[i:i + 100]]}
        requests.post(f"{base}/crm/v3/objects/contacts/batch/update", json=body, headers=headers,
                      timeout=30).raise_for_status()


def edit_salesforce(info: dict, ids: Sequence[str], title: str = TITLE) -> None:
    s, _, base = _salesforce(info)
    for i in range(0, len(ids), 200):
        records = [{"attributes": {"type": "Lead"}, "id": lid, "Title": title} for lid in ids[i:i + 200]]
        s.patch(f"{base}/composite/sobjects", json={"allOrNone": False, "records": records},
                timeout=30).raise_for_status()
