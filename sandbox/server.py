"""A small HTTP/1.1 server shared by both emulators: routing, accounting, faults.

Built on the standard library so the sandbox has no moving parts of its own.
Keep-alive and TCP_NODELAY matter: without them every response costs ~40 ms
(Nagle + delayed ACK) and benchmarks measure the sandbox, not leadsync.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    raw_target: str = ""
    scheme: str = "http"  # "https" on a TLS listener, so absolute links name the scheme the client used

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        """Repeated params (`properties=a&properties=b`) and comma lists alike."""
        out: list[str] = []
        for v in self.query.get(name, []):
            out.extend(p for p in v.split(",") if p)
        return out


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        # orjson: the same JSON, about 5x faster to encode; non-ASCII goes out as UTF-8 like the real APIs
        # send it, instead of \u escapes. Anything it cannot encode falls back to the standard library.
        try:
            return orjson.dumps(self.body)
        except TypeError:
            return json.dumps(self.body, separators=(",", ":")).encode()


class DropConnection(Exception):
    """Raised by a hook to close the socket without answering (a dropped connection)."""


Handler = Callable[[Request], Response]
Hook = Callable[[Request, str], "Response | None"]


@dataclass
class Fault:
    """One switchable fault. `endpoint` is a route name or '*'; `rate` in [0, 1]."""

    endpoint: str = "*"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    rate: float = 1.0
    remaining: int | None = None  # fire this many times, then stop
    latency_ms: int = 0
    drop: bool = False
    # The request is processed (a write lands) this long after it arrived, and its answer is never sent (the
    # connection is closed): the client sees its timeout, or a dropped connection, and cannot know the outcome.
    commit_late_ms: int = 0


class App:
    """Routes plus the sandbox's cross-cutting behaviour (accounting, faults, hooks)."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self.hooks: list[Hook] = []  # run before the handler: auth, rate limits
        self.after_hooks: list[Callable[[Request, str, Response], None]] = []
        self.faults: list[Fault] = []
        self.counts: Counter[tuple[str, int]] = Counter()
        self.rng = random.Random(seed)
        self.lock = threading.RLock()  # one writer at a time keeps the emulator simple and exact
        self._add_admin_routes()

    def route(self, method: str, pattern: str, name: str) -> Callable[[Handler], Handler]:
        """Register `pattern` (with `{param}` placeholders; `{param:path}` spans slashes)."""

        def to_regex(p: str) -> str:
            p = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", p)
            return "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p) + "/?$"

        def deco(fn: Handler) -> Handler:
            self.routes.append((method, re.compile(to_regex(pattern)), name, fn))
            return fn

        return deco

    def match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for m, rx, name, fn in self.routes:
            if m == method:
                hit = rx.match(path)
                if hit:
                    return name, fn, hit.groupdict()
        return None

    def handle(self, req: Request) -> Response:
        found = self.match(req.method, req.path)
        if found is None:
            resp = self.not_found(req)
            self.counts[("unmatched", resp.status)] += 1
            return resp
        name, fn, params = found
        req.params = params
        resp, fault = None, None
        if not name.startswith("admin."):
            fault = self._pick_fault(name) if self.faults else None
            resp = self._apply_fault(fault) if fault else None
            for hook in self.hooks:
                if resp is not None:
                    break
                resp = hook(req, name)
        if resp is None:
            try:
                resp = fn(req)
            except DropConnection:
                raise
            except Exception as exc:  # an emulator bug must surface as a 500, not a hang
                resp = Response(500, {"status": "error", "message": f"sandbox error: {exc!r}"})
        for after in self.after_hooks:
            after(req, name, resp)
        with self.lock:
            self.counts[(name, resp.status)] += 1
        if fault is not None and fault.commit_late_ms:
            raise DropConnection()  # processed late, and the answer is lost: the client never hears
        return resp

    def not_found(self, req: Request) -> Response:
        return Response(404, {"status": "error", "message": f"no route for {req.method} {req.path}"})

    # ----------------------------------------------------------------- faults
    def _pick_fault(self, name: str) -> Fault | None:
        """The fault that fires for this request, if any (counted down under the lock)."""
        with self.lock:
            for f in self.faults:
                if f.endpoint not in ("*", name) or (f.remaining is not None and f.remaining <= 0):
                    continue
                if f.rate < 1.0 and self.rng.random() >= f.rate:
                    continue
                if f.remaining is not None:
                    f.remaining -= 1
                return f
        return None

    @staticmethod
    def _apply_fault(f: Fault) -> Response | None:
        """Sleep outside the lock: a slow request delays only itself, as on a real server, so a late commit
        can race the client's own follow-up requests."""
        if f.latency_ms or f.commit_late_ms:
            time.sleep((f.latency_ms + f.commit_late_ms) / 1000)
        if f.drop:
            raise DropConnection()
        if f.status:
            return Response(f.status, f.body, dict(f.headers))
        return None

    # ----------------------------------------------------------------- admin
    def _add_admin_routes(self) -> None:
        @self.route("GET", "/_sandbox/requests", "admin.requests")
        def _requests(req: Request) -> Response:
            rows = [
                {"endpoint": ep, "status": st, "count": n}
                for (ep, st), n in sorted(self.counts.items())
                if not ep.startswith("admin.")
            ]
            return Response(200, {"total": sum(r["count"] for r in rows), "requests": rows})

        @self.route("POST", "/_sandbox/requests/reset", "admin.requests.reset")
        def _reset(req: Request) -> Response:
            with self.lock:
                self.counts.clear()
            return Response(204)

        @self.route("GET", "/_sandbox/faults", "admin.faults")
        def _faults(req: Request) -> Response:
            return Response(200, {"faults": [f.__dict__ for f in self.faults]})

        @self.route("POST", "/_sandbox/faults", "admin.faults.set")
        def _set_faults(req: Request) -> Response:
            body = req.json() or {}
            with self.lock:
                self.faults = [Fault(**f) for f in body.get("faults", [])]
                if "seed" in body:
                    self.rng.seed(body["seed"])
            return Response(200, {"faults": [f.__dict__ for f in self.faults]})

    def api_calls(self) -> int:
        return sum(n for (ep, _), n in self.counts.items() if not ep.startswith("admin."))


_DATE: list[Any] = [0, ""]  # (second, HTTP date) last formatted
_MAX_HEADERS = 100  # the standard library's limits
_MAX_LINE = 65536


def _make_handler(app: App, scheme: str = "http") -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"leadsync-sandbox-{app.name}"

        def setup(self) -> None:
            super().setup()
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def date_time_string(self, timestamp: float | None = None) -> str:
            """The Date header, formatted once per second rather than per response."""
            if timestamp is not None:
                return super().date_time_string(timestamp)
            now = int(time.time())
            if _DATE[0] != now:
                _DATE[:] = [now, super().date_time_string(now)]
            return _DATE[1]  # type: ignore[return-value]

        def parse_request(self) -> bool:
            """HTTP/1.x only, headers into a plain dict with lower-case names. The standard library's parser
            goes through the `email` package and cost about a tenth of a paging request."""
            self.command = None
            self.close_connection = True
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            words = self.requestline.split()
            if len(words) != 3 or not words[2].startswith("HTTP/1."):
                self.send_error(400, f"Bad request syntax ({self.requestline!r})")
                return False
            self.command, self.path, self.request_version = words
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS):
                line = self.rfile.readline(_MAX_LINE + 1)
                if len(line) > _MAX_LINE:
                    self.send_error(431, "Line too long")
                    return False
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = str(line, "iso-8859-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            else:
                self.send_error(431, "Too many headers")
                return False
            self.headers = headers  # type: ignore[assignment]
            connection = headers.get("connection", "").lower()
            self.close_connection = connection == "close" or (
                self.request_version == "HTTP/1.0" and connection != "keep-alive")
            return True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            req = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
                raw_target=self.path,
                scheme=scheme,
            )
            try:
                resp = app.handle(req)
            except DropConnection:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            data = resp.encode()
            self.send_response(resp.status)
            if data or resp.status not in (204, 304):
                self.send_header("Content-Type", resp.content_type)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n")
            if data and self.command != "HEAD":
                self._headers_buffer.append(data)  # one write (one TLS record run) per response, not two
            self.flush_headers()

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    # A client that closes mid-request is normal in fault tests; don't print tracebacks.
    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: D401
        return


def serve(
    app: App, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start `app` on a background thread; port 0 picks a free port."""
    server = _Server((host, port), _make_handler(app, "https" if ssl_context is not None else "http"))
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"sandbox-{app.name}", daemon=True)
    thread.start()
    return server, thread
