"""Loopback stand-ins for a Slack incoming webhook and an SMTP server, with faults to switch on.

`SlackReceiver.faults` is a list consumed one per request: an int is the status to answer (the body is
Slack's error word), "hang" answers after the client's read timeout, "drop" closes without an answer.
`SmtpReceiver.faults` likewise: an int is the reply code to the end of DATA (451 transient, 554 permanent).
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLACK_ERRORS = {400: "invalid_payload", 403: "action_prohibited", 404: "no_service", 410: "channel_is_archived",
                429: "rate_limited", 500: "rollup_error"}


class SlackReceiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []  # every request that reached the handler: path + body
        self.delivered: list[dict[str, Any]] = []  # those answered 200 (or hung / dropped after reading)
        self.faults: list[Any] = []
        self.hang_s = 3.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                entry = {"path": self.path, "body": body}
                owner.received.append(entry)
                fault = owner.faults.pop(0) if owner.faults else None
                if fault == "drop":
                    owner.delivered.append(entry)  # Slack posted it; the answer is what got lost
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "hang":
                    owner.delivered.append(entry)
                    time.sleep(owner.hang_s)
                status = fault if isinstance(fault, int) else 200
                if status == 200:
                    if fault != "hang":
                        owner.delivered.append(entry)
                text = b"ok" if status == 200 else SLACK_ERRORS.get(status, "error").encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                try:
                    self.wfile.write(text)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def texts(self, path: str | None = None) -> list[str]:
        return [d["body"]["text"] for d in self.delivered if path is None or d["path"] == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.faults: list[int] = []
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 localhost test SMTP")
                rcpt: list[str] = []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode(errors="replace").strip()
                    verb = cmd.split(" ")[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 localhost")
                    elif verb == "MAIL":
                        rcpt = []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpt.append(cmd.split(":", 1)[1].strip(" <>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = self.rfile.readline()
                            if not chunk:
                                return
                            data += chunk
                        code = owner.faults.pop(0) if owner.faults else 250
                        if code == 250:
                            msg = message_from_bytes(data[:-5].replace(b"\r\n..", b"\r\n."))
                            owner.messages.append((rcpt, msg))
                        self.reply(f"{code} {'OK' if code == 250 else 'try later' if code < 500 else 'refused'}")
                    elif verb == "RSET":
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
