"""Recording cassettes without credentials, for the sandbox and for `LEADSYNC_RECORD_LIVE=1` alike.

Filtering the Authorization header is not enough once a login runs inside the recording: the token
endpoints' request bodies hold client secrets, refresh tokens, passwords and JWT assertions, and
their answers hold access and refresh tokens. So those bodies are replaced on the way in, token
fields are blanked in every answer, and a recording is checked for every known secret before it is
written: a leak fails the test and leaves no file behind (the check never prints a secret).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlparse

import vcr
from pydantic import BaseModel, SecretStr
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serialize import serialize

FILTERED = "<filtered>"
#: HubSpot's refresh grant, Salesforce's OAuth token endpoint and SOAP login().
TOKEN_PATHS = ("/oauth/v1/token", "/services/oauth2/token", "/services/Soap/u/")
#: Answer fields that are credentials, in any JSON body (a token answer, an introspection …).
TOKEN_FIELDS = frozenset({"access_token", "refresh_token", "id_token", "signature", "sessionId"})
_SOAP_SESSION = re.compile(rb"(<(?:\w+:)?sessionId>)[^<]*(</(?:\w+:)?sessionId>)")
#: Headers that carry a credential or a session.
SECRET_HEADERS = ["authorization", "cookie", "set-cookie", "x-sfdc-session"]
SECRET_QUERY = ["access_token", "hapikey", "client_secret", "refresh_token", "code", "assertion"]

Secrets = Callable[[], Iterable[Any]]


def is_token_endpoint(uri: str) -> bool:
    path = urlparse(uri).path
    return any(path.startswith(p) or p in path for p in TOKEN_PATHS)


def scrub_request(request: Any) -> Any:
    """A token endpoint's request body is all credentials: keep the request, drop the body."""
    if is_token_endpoint(request.uri) and request.body:
        request.body = FILTERED.encode()
    return request


def scrub_interaction(request: Any, response: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Before saving: token endpoints' bodies both ways, and token fields in any answer."""
    return scrub_request(request), scrub_response(response)


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Blank token fields in JSON answers and the session id in SOAP login answers."""
    body = response.get("body", {}).get("string")
    if not body:
        return response
    raw = body if isinstance(body, bytes) else str(body).encode()
    if b"sessionId>" in raw:
        raw = _SOAP_SESSION.sub(rb"\1" + FILTERED.encode() + rb"\2", raw)
    elif any(f.encode() in raw for f in TOKEN_FIELDS):
        raw = _blank_json_fields(raw)
    response["body"]["string"] = raw if isinstance(body, bytes) else raw.decode()
    return response


def _blank_json_fields(raw: bytes) -> bytes:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(data, dict):
        data = {k: FILTERED if k in TOKEN_FIELDS and v else v for k, v in data.items()}
    return json.dumps(data).encode()


def secret_values(*sources: Any) -> list[str]:
    """Every secret in settings objects (their SecretStr fields) and plain values, as strings."""
    found: list[str] = []
    for source in sources:
        if isinstance(source, BaseModel):
            found += [v.get_secret_value() for v in source.__dict__.values() if isinstance(v, SecretStr)]
        elif isinstance(source, SecretStr):
            found.append(source.get_secret_value())
        elif isinstance(source, str):
            found.append(source)
        elif isinstance(source, Iterable):
            found += secret_values(*source)
    return [s for s in found if s and len(s) >= 4]


def leaked(text: str, secrets: Iterable[str]) -> int:
    """How many of `secrets` appear in `text`, as sent or URL-encoded."""
    return sum(1 for s in secrets if any(form in text for form in {s, quote(s, safe=""), quote_plus(s)}))


class CassetteLeak(AssertionError):
    """A recording held a credential; it was not written."""


class CheckedPersister:
    """vcrpy's filesystem persister, refusing to write a cassette in which any secret appears."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def load_cassette(self, cassette_path: str, serializer: Any) -> Any:
        return FilesystemPersister.load_cassette(cassette_path, serializer)

    def save_cassette(self, cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        count = leaked(serialize(cassette_dict, serializer), secret_values(self.secrets()))
        if count:
            raise CassetteLeak(f"{Path(cassette_path).name}: {count} credential(s) would be recorded; "
                               "the cassette was not written")
        FilesystemPersister.save_cassette(cassette_path, cassette_dict, serializer)


def recorder(library: Path, secrets: Secrets) -> vcr.VCR:
    """A VCR that filters credentials and checks `secrets()` (evaluated when saving) before writing."""
    rec = vcr.VCR(cassette_library_dir=str(library), filter_headers=SECRET_HEADERS,
                  filter_query_parameters=SECRET_QUERY, before_record_request=scrub_request,
                  before_save_interaction=scrub_interaction, match_on=["method", "path", "query"],
                  decode_compressed_response=True)
    rec.register_persister(CheckedPersister(secrets))
    return rec
