"""Transport-level redirect for peer extractors run by `bench/bench_peers.py` (standard library only).

Peers hard-code the CRM hosts (`api.hubapi.com`, `login.salesforce.com`, `*.my.salesforce.com`). Python
imports `sitecustomize` at start-up from the path, so a peer started with this folder on `PYTHONPATH`
resolves those names to the sandbox's loopback listeners, and **every other non-loopback address is
refused** before any packet leaves the machine (name resolution and `connect` both check).

`LEADSYNC_PEER_ROUTES` holds JSON `{"host": {"443": port, "80": port}}`; a host may be `*.suffix`. Without
it the module does nothing, so the file is inert anywhere else. `LEADSYNC_PEER_CA` names the CA bundle that
signs the sandbox's certificates: `certifi.where()` answers it, because `requests.Session.send` (how the
singer SDK and Airbyte's CDK send) never reads `REQUESTS_CA_BUNDLE`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from typing import Any

ENV = "LEADSYNC_PEER_ROUTES"
CA_ENV = "LEADSYNC_PEER_CA"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class RefusedHost(OSError):
    """A peer tried to reach a host outside the sandbox."""


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def route_for(routes: dict[str, dict[str, int]], host: str, port: Any) -> int | None:
    """The loopback port a (host, port) goes to, or None when the host is not a CRM host we serve."""
    name = host.lower().rstrip(".")
    target = routes.get(name)
    if target is None:
        target = next((t for pattern, t in routes.items()
                       if pattern.startswith("*.") and name.endswith(pattern[1:])), None)
    if target is None:
        return None
    key = str(port if port is not None else 443)
    if key not in target:
        if key.isdigit() or not target:
            raise RefusedHost(f"sandbox redirect: {host}:{port} has no sandbox listener")
        key = "443"  # a service name such as "https"
    return int(target[key])


def make_getaddrinfo(original: Any, routes: dict[str, dict[str, int]]) -> Any:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else host
        if text is None or is_loopback(text):
            return original(host, port, *args, **kwargs)
        mapped = route_for(routes, text, port)
        if mapped is None:
            raise RefusedHost(f"sandbox redirect: refused non-loopback host {text!r} (only the sandbox is reachable)")
        return original("127.0.0.1", mapped, *args, **kwargs)
    return getaddrinfo


def make_connect(original: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(str(address[0])):
            raise RefusedHost(f"sandbox redirect: refused connection to non-loopback {address[0]!r}")
        return original(self, address)
    return connect


def install(routes: dict[str, dict[str, int]]) -> None:
    """Patch name resolution and connects for this process (idempotent)."""
    if getattr(socket, "_leadsync_redirect", False):
        return
    socket.getaddrinfo = make_getaddrinfo(socket.getaddrinfo, routes)
    socket.socket.connect = make_connect(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = make_connect(socket.socket.connect_ex)  # type: ignore[method-assign]
    socket._leadsync_redirect = True  # type: ignore[attr-defined]


def trust(bundle: str) -> None:
    """Make certifi's bundle the sandbox's, before anything imports requests (it reads certifi at import)."""
    try:
        import certifi
        import certifi.core
    except ImportError:
        return
    certifi.where = certifi.core.where = lambda: bundle  # type: ignore[assignment]


if os.environ.get(ENV):
    install(json.loads(os.environ[ENV]))
if os.environ.get(CA_ENV):
    trust(os.environ[CA_ENV])
