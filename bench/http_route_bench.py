"""What Powertools' HTTP API resolver costs the HTTP door: per request and at import.

    .venv/bin/python -m bench.http_route_bench

A request of 10 events through publish_http's handler (the resolver, then the route) against the same
request through the route's logic alone; NATS is replaced by a stand-in that takes every event, so that
only the routing is measured. Import: the handler module against the NATS+Powertools libraries alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench.lambda_context import Context
from local.functions import load_function_app
from tokenmeter.core import Contract, parse_config
from tokenmeter.ingestion.http_api import HttpSettings, handle_request
from tokenmeter.nats import PublishOutcome

ROOT = Path(__file__).resolve().parent.parent
NOW = int(time.time())


def request(events: int) -> dict:
    body = {"events": [{"transaction_id": f"t{i}-input", "external_subscription_id": "sub_1", "code": "llm_tokens",
                        "timestamp": f"{NOW}.000", "properties": {"tokens": i, "model": "gpt-4o", "token_type": "input"}}
                       for i in range(events)]}
    return {"version": "2.0", "routeKey": "POST /v1/events", "rawPath": "/v1/events", "rawQueryString": "",
            "headers": {"content-type": "application/json"}, "body": json.dumps(body), "isBase64Encoded": False,
            "requestContext": {"requestId": "r", "stage": "$default", "routeKey": "POST /v1/events",
                               "http": {"method": "POST", "path": "/v1/events", "sourceIp": "203.0.113.7"}}}


def stored(events: list) -> list[PublishOutcome]:
    return [PublishOutcome(e.transaction_id, "stored") for e in events]


def per_request(call, rounds: int = 2000) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        best = min(best, (time.perf_counter() - started) / rounds)
    return best


def import_ms(statement: str, folder: Path) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return 1000 * statistics.median(float(subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                                                         text=True, check=True).stdout) for _ in range(11))


def main() -> None:
    os.environ.update({"NATS_URL": "nats://127.0.0.1:4222", "POWERTOOLS_LOG_LEVEL": "ERROR",
                       "POWERTOOLS_METRICS_NAMESPACE": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    contract, settings, event = Contract.from_config(parse_config({}), 62 * 86_400), HttpSettings(), request(10)
    app = load_function_app("publish_http")
    # The route's NATS call answered by the stand-in: publish_or_fail's coroutine is closed, never awaited.
    runtime = SimpleNamespace(nats=SimpleNamespace(run=lambda coro: (coro.close(), stored(app_events))[1]),
                              contract=contract)
    app_events: list = []
    real_handle = app.handle_request

    def handle(raw, settings_, publish, contract_):
        return real_handle(raw, settings_, lambda found: (app_events.clear(), app_events.extend(found), publish(found))[2],
                           contract_)

    app.handle_request, app._runtime = handle, (runtime, settings)
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            through = per_request(lambda: app.lambda_handler(event, Context()))
        finally:
            sys.stdout = stdout
    direct = per_request(lambda: handle_request(event, settings, stored, contract))
    libraries = "import asyncio, nats, nats.js; from aws_lambda_powertools import Logger, Metrics"
    print(f"{'figure':52} {'value':>10}")
    print(f"{'request of 10 events through the resolver, us':52} {through * 1e6:10.0f}")
    print(f"{'the same request, the route logic alone, us':52} {direct * 1e6:10.0f}")
    print(f"{'resolver and handler overhead per request, us':52} {(through - direct) * 1e6:10.0f}")
    print(f"{'import publish_http handler, ms':52} {import_ms('import app', ROOT / 'functions/publish_http'):10.1f}")
    print(f"{'import publish_event handler (no resolver), ms':52} {import_ms('import app', ROOT / 'functions/publish_event'):10.1f}")
    print(f"{'import nats-py + Powertools alone, ms':52} {import_ms(libraries, ROOT):10.1f}")


if __name__ == "__main__":
    main()
