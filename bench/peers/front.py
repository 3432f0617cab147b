"""The CRM host names the peers hard-code, served by the sandbox on loopback.

Peers call `https://api.hubapi.com` and `https://login.salesforce.com` (or `test.`, or a My Domain). Each
emulator gets a second listener, TLS with a throw-away CA whose certificate names those hosts, on the same
`App` (so request accounting and faults are the emulator's own). `redirect/sitecustomize.py` maps the names
to these ports inside the peer's process; the CA bundle (this CA plus the Salesforce emulator's, whose
instance URL the token grant hands out) goes in `REQUESTS_CA_BUNDLE` / `SSL_CERT_FILE`.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from sandbox.run import Sandbox
from sandbox.server import serve

REDIRECT_DIR = Path(__file__).resolve().parent / "redirect"
HUBSPOT_HOSTS = ("api.hubapi.com", "api.hubspot.com")
SALESFORCE_HOSTS = ("login.salesforce.com", "test.salesforce.com", "*.my.salesforce.com")


@dataclass
class Front:
    routes: dict[str, dict[str, int]]
    ca_bundle: Path
    servers: list[Any] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What a peer's process needs: the redirect on its path, the routes, the CA bundle."""
        bundle = str(self.ca_bundle)
        return {"PYTHONPATH": str(REDIRECT_DIR), "LEADSYNC_PEER_ROUTES": json.dumps(self.routes),
                "LEADSYNC_PEER_CA": bundle, "REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle, "CURL_CA_BUNDLE": bundle}

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def start_front(sb: Sandbox, workdir: Path) -> Front:
    ca = trustme.CA()
    names = [*HUBSPOT_HOSTS, *SALESFORCE_HOSTS, "127.0.0.1", "localhost"]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    hs_tls, _ = serve(sb.hubspot.app, "127.0.0.1", 0, ssl_context=ctx)
    sf_tls, _ = serve(sb.salesforce.app, "127.0.0.1", 0, ssl_context=ctx)
    hs_plain = int(sb.hubspot_url.rsplit(":", 1)[1])
    routes = {h: {"443": hs_tls.server_address[1], "80": hs_plain} for h in HUBSPOT_HOSTS}
    routes |= {h: {"443": sf_tls.server_address[1]} for h in SALESFORCE_HOSTS}
    bundle = workdir / "peer-ca-bundle.pem"
    bundle.write_bytes(ca.cert_pem.bytes() + Path(sb.salesforce.ca_pem_path).read_bytes())
    return Front(routes, bundle, [hs_tls, sf_tls])
