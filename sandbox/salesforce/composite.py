"""`POST /composite`: up to 25 subrequests in one call, later ones referencing earlier results.

Reference §4.3: outer status 200 whatever the subrequests did; each item has
`body`, `httpHeaders`, `httpStatusCode` and `referenceId`, and a failed item's
body is the normal whole-request error array. `@{ref.field}` in a later URL or
body is replaced by that field of an earlier result. Under `allOrNone: true`
one failure rolls every subrequest back and the others report
`PROCESSING_HALTED`. Subrequests run through the same handlers as direct
calls, and the composite counts as one API call.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.salesforce.store import Store
from sandbox.salesforce.wire import DATA, NOT_FOUND, errors, json_object
from sandbox.server import App, Request, Response

MAX_SUBREQUESTS = 25
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([A-Za-z0-9_.]+)\}")
ROLLED_BACK = ("The transaction was rolled back since another operation in the same transaction failed.",
               "PROCESSING_HALTED")


class UnresolvedReference(Exception):
    """A `@{ref.field}` naming a subrequest that failed, has not run, or lacks that field."""


class Composite:
    """Registers `POST /services/data/vXX.X/composite` on `app`."""

    def __init__(self, app: App, store: Store) -> None:
        self.app = app
        self.store = store
        app.route("POST", DATA + "/composite", "sf.composite")(self.composite)

    def composite(self, req: Request) -> Response:
        body = json_object(req)
        if isinstance(body, Response):
            return body
        subrequests = body.get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            return Response(400, errors("compositeRequest: a non-empty list of subrequests is required",
                                        "JSON_PARSER_ERROR"))
        if len(subrequests) > MAX_SUBREQUESTS:
            return Response(400, errors(f"Composite request limit exceeded: {len(subrequests)} subrequests; "
                                        f"the maximum is {MAX_SUBREQUESTS}", "LIMIT_EXCEEDED"))
        with self.app.lock:
            return Response(200, {"compositeResponse": self._run(req, subrequests,
                                                                 bool(body.get("allOrNone", False)))})

    def _run(self, req: Request, subrequests: list[Any], all_or_none: bool) -> list[dict[str, Any]]:
        """Run in order; under allOrNone the first failure halts the rest and restores the store."""
        snapshot = self.store.snapshot() if all_or_none else None
        results: dict[str, Any] = {}
        items: list[dict[str, Any]] = []
        failed = False
        for sub in subrequests:
            ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
            if failed and all_or_none:
                items.append(_item(ref, Response(400, errors(*ROLLED_BACK))))
                continue
            resp = self._one(req, sub, results)
            items.append(_item(ref, resp))
            if resp.status >= 400:
                failed = True
            else:
                results[ref] = resp.body
        if failed and snapshot is not None:
            self.store.restore(snapshot)
            items = [it if it["httpStatusCode"] >= 400 else _item(it["referenceId"], Response(400, errors(*ROLLED_BACK)))
                     for it in items]
        return items

    def _one(self, outer: Request, sub: Any, results: dict[str, Any]) -> Response:
        if not isinstance(sub, dict) or not sub.get("method") or not sub.get("url") or not sub.get("referenceId"):
            return Response(400, errors("Each subrequest needs method, url and referenceId", "JSON_PARSER_ERROR"))
        try:
            url = _resolve(str(sub["url"]), results)
            payload = json.loads(_resolve(json.dumps(sub["body"]), results)) if "body" in sub else None
        except UnresolvedReference as exc:
            return Response(400, errors(f"Invalid reference specified. No value for {exc} found.",
                                        "PROCESSING_HALTED"))
        parts = urlsplit(url)
        method = str(sub["method"]).upper()
        found = self.app.match(method, parts.path)
        if found is None or found[0] in ("sf.composite", "sf.token", "sf.soap_login"):
            return Response(404, NOT_FOUND)
        _, handler, params = found
        request = Request(method, parts.path, parse_qs(parts.query, keep_blank_values=True), dict(outer.headers),
                          b"" if payload is None else json.dumps(payload).encode(), params, url)
        resp = handler(request)
        if method == "POST" and resp.status == 201 and isinstance(resp.body, dict) and "id" in resp.body:
            resp.headers["Location"] = f"{parts.path.rstrip('/')}/{resp.body['id']}"
        return resp


def _resolve(text: str, results: dict[str, Any]) -> str:
    """Replace every `@{ref.field}` with that field of an earlier successful result."""

    def value(match: re.Match[str]) -> str:
        ref, path = match.group(1), match.group(2)
        current: Any = results.get(ref)
        for key in path.split("."):
            if not isinstance(current, dict) or key not in current:
                raise UnresolvedReference(f"{ref}.{path}")
            current = current[key]
        return str(current)

    return REFERENCE.sub(value, text)


def _item(ref: str, resp: Response) -> dict[str, Any]:
    headers = {"Location": resp.headers["Location"]} if "Location" in resp.headers else {}
    return {"body": resp.body, "httpHeaders": headers, "httpStatusCode": resp.status, "referenceId": ref}
