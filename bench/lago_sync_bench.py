"""lago_sync throughput from JetStream into the Lago emulator, beside two raw ceilings from the same run.

    .venv/bin/python bench/lago_sync_bench.py [--events N]

- tokenmeter: the lago_sync handler run until the consumer is drained;
- raw fetch+ack: a nats-py loop fetching 500 at a time from another durable consumer on the same
  stream and acking each message;
- raw batch POSTs: httpx posting the same number of events to the same emulator, 100 per request,
  on one kept-alive connection.
Issue 17's target: >= 20,000 events/s and >= 0.9x the slower ceiling. lago_sync does both ceilings' work
on one thread, so their sum is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
from lago_python_client.client import Client
from lago_python_client.models import BillableMetric, Charge, Customer, Plan, Subscription
from lago_python_client.models.charge import Charges

from bench.lambda_context import Context
from local.functions import load_function_app
from local.lago_emulator.process import LagoEmulatorProcess
from local.nats_server import NatsServer

ROOT = Path(__file__).resolve().parent.parent

NOW = "2026-11-15T12:00:00Z"
IN_PERIOD = 1_794_744_000
SUBSCRIPTIONS = 50




def events_for(tag: str, n: int) -> list[dict]:
    return [{"transaction_id": f"{tag}-{i:012d}-input", "external_subscription_id": f"sub_{i % SUBSCRIPTIONS}",
             "code": "llm_tokens", "timestamp": f"{IN_PERIOD + i % 1000}.000",
             "properties": {"tokens": i % 4000 + 1, "model": "llama3.1:8b", "token_type": "input"}} for i in range(n)]


def seed(lago: LagoEmulatorProcess) -> None:
    client = Client(api_key=lago.api_key, api_url=lago.url)
    metric = client.billable_metrics.create(BillableMetric(name="t", code="llm_tokens", aggregation_type="sum_agg",
                                                           field_name="tokens"))
    client.plans.create(Plan(name="p", code="per_token", interval="monthly", amount_cents=0, amount_currency="USD", charges=Charges(
        __root__=[Charge(billable_metric_id=metric.lago_id, charge_model="standard", properties={"amount": "0.00001"})])))
    for i in range(SUBSCRIPTIONS):
        client.customers.create(Customer(external_id=f"c{i}", currency="USD"))
        client.subscriptions.create(Subscription(external_customer_id=f"c{i}", plan_code="per_token",
                                                 external_id=f"sub_{i}", subscription_at="2026-01-01T00:00:00Z"))


def publish(url: str, events: list[dict]) -> None:
    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import ManagedConnection, NatsSettings, publish_events

    connection = ManagedConnection(NatsSettings.from_env({**os.environ, "NATS_URL": url}))

    async def go() -> None:
        await connection.jetstream()
        for start in range(0, len(events), 5000):
            chunk = [UsageEvent.from_dict(e) for e in events[start:start + 5000]]
            outcomes = await publish_events(connection.client, chunk, connection.settings, timeout=30)
            assert all(o.status == "stored" for o in outcomes)
        await connection.close()

    connection.run(go())
    connection.loop.close()


def raw_fetch_ack(url: str, n: int) -> float:
    async def go() -> float:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        nc = await nats.connect(url)
        js = nc.jetstream()
        sub = await js.pull_subscribe("usage.>", durable="bench-raw", stream="USAGE",
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000))
        seen = 0
        start = time.perf_counter()
        while seen < n:
            for msg in await sub.fetch(500, timeout=5):
                await msg.ack()
                seen += 1
        await nc.flush()
        took = time.perf_counter() - start
        await sub.unsubscribe()
        await nc.close()
        return took

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def raw_posts(lago: LagoEmulatorProcess, events: list[dict]) -> float:
    with httpx.Client(base_url=lago.url, headers={"Authorization": f"Bearer {lago.api_key}"}, timeout=10) as http:
        start = time.perf_counter()
        for i in range(0, len(events), 100):
            http.post("/api/v1/events/batch", json={"events": events[i:i + 100]}).raise_for_status()
        return time.perf_counter() - start


def main() -> None:
    # The generated events carry fixed dates: the ledger keeps ten years, so the event contract takes them.
    os.environ.setdefault("NATS_STREAM_MAX_AGE_DAYS", "3650")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    n = parser.parse_args().events
    with tempfile.TemporaryDirectory() as tmp:
        nats_server = NatsServer(Path(tmp) / "js").start()
        lago = LagoEmulatorProcess(Path(tmp) / "lago", now=NOW).start()
        try:
            seed(lago)
            publish(nats_server.url, events_for("ledger", n))
            os.environ.update({"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                               "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "us-east-1"})
            app = load_function_app("lago_sync")

            shipped = 0
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                start = time.perf_counter()
                while True:
                    summary = app.lambda_handler({}, Context())
                    shipped += summary["shipped"]
                    if summary["drained"]:
                        break
                ours = time.perf_counter() - start
            assert shipped == n, summary
            fetch_ack = raw_fetch_ack(nats_server.url, n)
            posts = raw_posts(lago, events_for("raw", n))
        finally:
            lago.stop()
            nats_server.stop()
    ceiling = max(fetch_ack, posts)
    rows = [("lago_sync, events/s", n / ours), ("raw fetch(500)+ack loop, events/s", n / fetch_ack),
            ("raw 100-event batch POSTs, events/s", n / posts)]
    for name, rate in rows:
        print(f"{name:42} {rate:12,.0f}")
    print(f"{'ratio to the slower ceiling':42} {ceiling / ours:12.2f}x   (target >= 0.9x, and >= 20,000 events/s)")
    print(f"{'ratio to both ceilings one after the other':42} {(fetch_ack + posts) / ours:12.2f}x")
    print(json.dumps({"events": n, "lago_sync_s": round(ours, 3), "fetch_ack_s": round(fetch_ack, 3), "posts_s": round(posts, 3)}))


if __name__ == "__main__":
    main()
