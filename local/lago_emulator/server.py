"""The emulator's HTTP server: bytes in and out, fault injection, and the admin routes."""

from __future__ import annotations

import json
import random
import socket
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .api import Emulator
from .errors import ApiError


@dataclass
class Faults:
    """Faults applied to /api/v1 requests; set at start or with POST /admin/faults."""

    error_rate: float = 0.0  # answer 500 before doing anything
    rate_limit_next: int = 0  # answer the next N requests 429
    rate_limit_reset: int = 1  # seconds, in X-RateLimit-Reset
    latency_ms: int = 0  # added before every answer
    drop_rate: float = 0.0  # close the connection without answering, before doing anything
    drop_after_store_rate: float = 0.0  # do the request, then close the connection without answering
    seed: int | None = None

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Reset every fault to its default, then apply ``changes``."""
        fresh = Faults(**changes)
        self.__dict__.update(fresh.__dict__)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Lago's own server
    emulator: Emulator
    faults: Faults
    counters: dict[str, int]

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every kept-alive response back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        emulator = self.emulator
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if url.path.startswith("/admin/"):
            if not emulator.authorized(self.headers.get("Authorization")):
                return self._send(401, {"status": 401, "error": "Unauthorized"})
            return self._admin(method, url.path, raw)
        faults = self.faults
        with emulator.lock:
            self.counters["requests"] += 1
            roll = faults.random.random()
            limited = faults.rate_limit_next > 0
            if limited:
                faults.rate_limit_next -= 1
            drop_after = faults.random.random() < faults.drop_after_store_rate
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if roll < faults.drop_rate:
            return self._drop()
        if limited:
            return self._send(429, {"status": 429, "error": "Too Many Requests"},
                              {"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(faults.rate_limit_reset)})
        if roll < faults.drop_rate + faults.error_rate:
            return self._send(500, {"status": 500, "error": "Internal Server Error"})
        try:
            body = orjson.loads(raw) if raw else None
            status, payload = emulator.handle(method, url.path, parse_qs(url.query), self.headers.get("Authorization"), body)
        except orjson.JSONDecodeError:
            status, payload = 400, {"status": 400, "error": "BadRequest: invalid JSON"}
        except ApiError as error:
            status, payload = error.status, error.body
        if drop_after and method != "GET":
            return self._drop()
        self._send(status, payload)

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        emulator = self.emulator
        body = json.loads(raw) if raw else {}
        if path == "/admin/faults":
            if method == "POST":
                with emulator.lock:
                    self.faults.update(body)
            return self._send(200, self.faults.as_dict())
        if path == "/admin/api_keys" and method == "POST":
            with emulator.lock:
                emulator.settings.api_keys = dict(body["keys"])
            return self._send(200, {"keys": len(emulator.settings.api_keys)})
        if path == "/admin/delete_events" and method == "POST":
            deleted = emulator.store.delete_events(subscription=body.get("external_subscription_id"),
                                                   transaction_ids=body.get("transaction_ids"), count=body.get("count"))
            return self._send(200, {"deleted": deleted})
        if path == "/admin/stats":
            return self._send(200, {"requests": self.counters["requests"], "events": emulator.store.count_events(),
                                    "distinct_events": emulator.store.count_distinct_events(),
                                    "event_store": emulator.event_store})
        self._send(404, {"status": 404, "error": "Not Found"})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(payload)
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(2)


def make_server(host: str, port: int, emulator: Emulator, faults: Faults | None = None) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"emulator": emulator, "faults": faults or Faults(),
                                                "counters": {"requests": 0}})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
