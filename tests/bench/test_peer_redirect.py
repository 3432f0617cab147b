"""The transport redirect that points peer extractors at the sandbox (bench/peers/redirect/sitecustomize.py):
CRM host names go to loopback listeners, every other non-loopback host is refused before a packet leaves."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REDIRECT_DIR = Path(__file__).resolve().parents[2] / "bench" / "peers" / "redirect"


def _module():
    spec = importlib.util.spec_from_file_location("peer_sitecustomize", REDIRECT_DIR / "sitecustomize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # inert: LEADSYNC_PEER_ROUTES is not set in this process
    return mod


ROUTES = {"api.hubapi.com": {"443": 4431, "80": 8081}, "*.my.salesforce.com": {"443": 4432}}


def test_crm_hosts_resolve_to_the_sandbox_ports_and_others_are_refused():
    mod = _module()
    seen = []
    fake = lambda host, port, *a, **k: seen.append((host, port)) or [("resolved", host, port)]  # noqa: E731
    resolve = mod.make_getaddrinfo(fake, ROUTES)
    assert resolve("api.hubapi.com", 443) == [("resolved", "127.0.0.1", 4431)]
    assert resolve("API.HUBAPI.COM.", 80) == [("resolved", "127.0.0.1", 8081)]
    assert resolve("acme.my.salesforce.com", "https") == [("resolved", "127.0.0.1", 4432)]
    assert resolve("localhost", 5000) == [("resolved", "localhost", 5000)]
    assert resolve("127.0.0.1", 5000) == [("resolved", "127.0.0.1", 5000)]
    for host in ("example.com", "login.salesforce.com.evil.com", "10.0.0.1", "8.8.8.8", b"api.example.org"):
        with pytest.raises(mod.RefusedHost, match="refused non-loopback host"):
            resolve(host, 443)
    with pytest.raises(mod.RefusedHost, match="no sandbox listener"):
        resolve("acme.my.salesforce.com", 80)
    assert all(host in ("127.0.0.1", "localhost") for host, _ in seen)  # nothing else was ever looked up


def test_connect_to_a_non_loopback_address_is_refused():
    mod = _module()
    calls = []
    connect = mod.make_connect(lambda sock, address: calls.append(address))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(mod.RefusedHost, match="non-loopback"):
            connect(sock, ("192.168.1.10", 443))
        connect(sock, ("127.0.0.1", 9))
    assert calls == [("127.0.0.1", 9)]


def test_a_python_started_with_the_redirect_reaches_the_sandbox_by_crm_name_and_nothing_else(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept()[0].sendall(b"sandbox"), daemon=True).start()
    code = (
        "import socket\n"
        "s = socket.create_connection(('api.hubapi.com', 443), timeout=5); print(s.recv(16).decode())\n"
        "for host in ('example.com', '1.1.1.1'):\n"
        "    try:\n"
        "        socket.create_connection((host, 443), timeout=5)\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REDIRECT_DIR),
           "LEADSYNC_PEER_ROUTES": json.dumps({"api.hubapi.com": {"443": port}})}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    listener.close()
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0] == "sandbox"
    assert lines[1].startswith("RefusedHost") and "'example.com'" in lines[1]
    assert lines[2].startswith("RefusedHost") and "'1.1.1.1'" in lines[2]
