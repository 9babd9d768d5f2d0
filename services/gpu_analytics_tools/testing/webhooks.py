"""A webhook endpoint for tests: it keeps every POST it is sent, as (path, JSON body), and
answers 200. It listens on 127.0.0.1 (Alertmanager beside the test) or on a Unix socket (the
cluster simulation reaches one through its receiver port)."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = {"unparsed": body.decode(errors="replace")}
        with self.server.lock:
            self.server.received.append((self.path, payload))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def address_string(self) -> str:  # a Unix socket's peer has no host
        return "local"

    def log_message(self, *_args: Any) -> None:
        pass


class WebhookServer(HTTPServer):
    received: list[tuple[str, Any]]
    lock: threading.Lock


class _TcpServer(ThreadingHTTPServer, WebhookServer):
    pass


class _UnixServer(socketserver.ThreadingUnixStreamServer, WebhookServer):
    def server_bind(self) -> None:  # HTTPServer's would ask a Unix socket for a host name
        socketserver.UnixStreamServer.server_bind(self)
        self.server_name, self.server_port = "local", 0


class WebhookReceiver:
    """Start with `start()`, stop with `stop()`; `received` grows as messages arrive."""

    def __init__(self, unix_socket: Path | None = None) -> None:
        self.server: WebhookServer
        if unix_socket is None:
            self.server = _TcpServer(("127.0.0.1", 0), _Handler)
        else:
            unix_socket.unlink(missing_ok=True)
            self.server = _UnixServer(str(unix_socket), _Handler)
        self.server.received = []
        self.server.lock = threading.Lock()
        self.unix_socket = unix_socket

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def received(self) -> list[tuple[str, Any]]:
        with self.server.lock:
            return list(self.server.received)

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="webhooks").start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)

    def wait(self, seconds: float, until: Any = None) -> list[tuple[str, Any]]:
        """What arrived once `until(received)` holds, or after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until(self.received):
                break
            time.sleep(0.2)
        return self.received
