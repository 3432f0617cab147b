"""A run's status in words: ok, failed with the peer's own error, or blocked on a known sandbox gap.

The gaps listed in issue 18 are being fixed on another branch; a peer that trips on one is reported as
"blocked on sandbox: X (issue 18)" so the row says why it is empty, and runs once the sandbox has it.
"""

from __future__ import annotations

import re

from peers.runner import Outcome

#: (pattern in the peer's errors or stderr, what the sandbox lacks) — issue 18's list.
ISSUE_18 = (
    (r"unsupported_grant_type|grant type not supported", "Salesforce refresh_token grant"),
    (r"DailyBulkApiBatches", "DailyBulkApiBatches in /limits"),
    (r"DELETE.*jobs/query|no route for DELETE .*/jobs/query", "DELETE jobs/query/{id}"),
    (r"properties/v[12]/deals?/properties", "legacy deal properties (/properties/v1/deals/properties, /properties/v2/deal/properties)"),
    (r"Unable to infer object type from: \w+|/companies/v2/properties",
     "HubSpot properties for every standard object type"),
    (r"crm/v4/associations/contacts?/compan", "v4 associations contact → companies"),
    (r"\d\.\d{6}(Z|\+00:?00).*(unexpected token|MALFORMED_QUERY)", "SOQL datetime literals with 6 fractional digits"),
)


def status_of(out: Outcome, discover: bool = False) -> str:
    if out.timed_out:
        return "failed: timed out"
    if out.returncode == 0 and not out.errors:
        return "ok"
    text = "\n".join([*out.errors, out.stderr_tail])
    for pattern, gap in ISSUE_18:
        if re.search(pattern, text, re.IGNORECASE | re.DOTALL):
            return f"blocked on sandbox: {gap} (issue 18)"
    stage = "discover" if discover else "run"
    return f"failed ({stage}, exit {out.returncode}): {_reason(out)}"


def _reason(out: Outcome) -> str:
    if out.errors:
        return out.errors[-1][:400]
    lines = [ln.strip() for ln in out.stderr_tail.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"error|exception|critical|fatal", ln, re.IGNORECASE)]
    return (errors or lines or ["no output"])[-1][:400]
