"""Reconciliation at volume: the reconcile function's first pass over a large ledger and an incremental pass
after 10,000 new events, each beside its raw baseline from the same run, with peak memory.

    .venv/bin/python -m bench.reconcile_bench [--events 1000000] [--subscriptions 1000] [--new 10000]

- The ledger: N usage events over the first half of the current month, for S subscriptions, published
  straight into the USAGE stream (pipelined nats-py publishes; the time is printed) and posted to the
  Lago emulator as lago_sync would have shipped them, so Lago agrees with the ledger. lago_sync's consumer
  is placed after the last event (everything has been handed to it).
- First pass: the reconcile handler in a fresh interpreter (peak RSS is that process's); it counts every
  event into the running totals and checks every subscription against Lago. Baseline: what the pass of the
  previous version had to do at least, read every ledger message and decode it into a usage event, in a
  fresh interpreter too (that version then held them all in memory, which the peak RSS beside it shows).
- Incremental pass: 10,000 new events for all subscriptions (again in Lago too), then the handler.
  Baseline: a raw nats-py read of those 10,000 messages plus one current-usage call per touched
  subscription at Lago Cloud's limit of 200 requests/s, 8 at a time (the pass's concurrency).
- Extrapolation: the largest month one 15-minute pass can reconcile, and a pass's Lambda cost per
  million ledger events (x86, us-east-1: $0.0000166667 per GB-s at the template's 512 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from local.lago_emulator.process import LagoEmulatorProcess
from local.nats_server import NatsServer

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-15T12:00:00Z"
MONTH_START = 1_793_491_200  # 2026-11-01T00:00:00Z
SPAN_SECONDS = 14 * 86_400 + 12 * 3600  # to the emulator's now
GB_SECOND_USD, MEMORY_GB, USAGE_RATE = 0.0000166667, 0.5, 200.0


def events(start: int, n: int, subscriptions: int, seed: int, total: int, first_second: int = MONTH_START,
           span: int = SPAN_SECONDS) -> list[dict]:
    """Events ``start``..``start + n`` of ``total`` spread in time order over ``span`` seconds from
    ``first_second`` (as a ledger fills), each subscription in turn."""
    rng = random.Random(seed)
    step = span / max(total, 1)
    return [{"transaction_id": f"e{start + i:09d}", "external_subscription_id": f"sub_{(start + i) % subscriptions:05d}",
             "code": "llm_tokens", "timestamp": f"{first_second + (start + i) * step:.3f}",
             "properties": {"tokens": rng.randrange(1, 4000), "model": rng.choice(("gpt-4o", "llama3.1:8b")),
                            "token_type": rng.choice(("input", "output"))}} for i in range(n)]


async def publish(url: str, batch: list[dict]) -> None:
    import nats
    import orjson

    from tokenmeter.nats import NatsSettings, ensure_stream, subject_for

    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30, publish_async_max_pending=8000)
    await ensure_stream(js, NatsSettings.from_env({"NATS_URL": url, "NATS_STREAM_MAX_AGE_DAYS": "3650"}))
    futures = [await js.publish_async(subject_for("usage", e["external_subscription_id"], e["code"]), orjson.dumps(e),
                                      headers={"Nats-Msg-Id": e["transaction_id"]}) for e in batch]
    await asyncio.gather(*futures)
    await nc.close()


def ship(lago: LagoEmulatorProcess, batch: list[dict]) -> None:
    """What lago_sync would have sent: the same events, 100 per request, 8 requests at a time."""
    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=lago.url, headers={"Authorization": f"Bearer {lago.api_key}"},
                                     timeout=60) as http:
            slots = asyncio.Semaphore(8)

            async def post(chunk: list[dict]) -> None:
                async with slots:
                    (await http.post("/api/v1/events/batch", json={"events": chunk})).raise_for_status()

            await asyncio.gather(*(post(batch[i:i + 100]) for i in range(0, len(batch), 100)))

    asyncio.run(post_all())


def seed(lago: LagoEmulatorProcess, subscriptions: int) -> None:
    with httpx.Client(base_url=f"{lago.url}/api/v1", headers={"Authorization": f"Bearer {lago.api_key}"}) as http:
        metric = http.post("/billable_metrics", json={"billable_metric": {
            "name": "t", "code": "llm_tokens", "aggregation_type": "sum_agg", "field_name": "tokens"}}).json()
        http.post("/plans", json={"plan": {"name": "p", "code": "per_token", "interval": "monthly", "amount_cents": 0,
                                           "amount_currency": "USD", "charges": [{
                                               "billable_metric_id": metric["billable_metric"]["lago_id"],
                                               "charge_model": "standard", "properties": {"amount": "0.00001"}}]}})
        for i in range(subscriptions):
            http.post("/customers", json={"customer": {"external_id": f"c{i:05d}", "currency": "USD"}})
            http.post("/subscriptions", json={"subscription": {
                "external_customer_id": f"c{i:05d}", "plan_code": "per_token", "external_id": f"sub_{i:05d}",
                "subscription_at": "2026-01-01T00:00:00Z"}}).raise_for_status()


def hand_all_to_lago_sync(url: str) -> None:
    """lago_sync's consumer, read and acked to the end: everything has been handed to lago_sync."""
    import nats

    from tokenmeter.nats import NatsSettings, ensure_consumer

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        settings = NatsSettings.from_env({"NATS_URL": url})
        await ensure_consumer(js, settings)
        sub = await js.pull_subscribe("usage.>", durable=settings.consumer, stream="USAGE")
        while (pending := (await sub.consumer_info()).num_pending) > 0:
            for msg in await sub.fetch(min(1000, pending), timeout=5):
                await msg.ack()
        await nc.close()

    asyncio.run(go())


def in_child(*args: str, env: dict[str, str]) -> dict:
    """Run ``python -m bench.reconcile_bench --child ...`` and return what it prints (JSON)."""
    done = subprocess.run([sys.executable, "-m", "bench.reconcile_bench", "--child", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(what: str, count: int) -> None:
    """Imports first (a warm Lambda environment has them), then the measured work."""
    import resource

    from bench.lambda_context import Context
    from local.functions import load_function_app
    from tokenmeter.core import UsageEvent  # noqa: F401 - the baseline's decoder, imported before the clock starts

    app = load_function_app("reconcile")
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    if what == "pass":
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            summary = app.lambda_handler({}, Context())
        result = {"totals": summary["totals"], "seconds": summary["seconds"],
                  "checked": summary["reconciliation"]["subscriptions"],
                  "drifting": len(summary["reconciliation"]["drifting"]), "waiting": summary["reconciliation"]["waiting"]}
    else:
        result = {"read": asyncio.run(_read_all(os.environ["NATS_URL"], count))}
    result.update(wall=time.perf_counter() - started, cpu=time.process_time() - cpu, base_mb=base_mb,
                  peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


async def _read_all(url: str, last_n: int) -> int:
    """The previous version's floor: every message (or the last ``last_n``) read and decoded into a usage event."""
    import nats
    import orjson
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from tokenmeter.core import UsageEvent

    nc = await nats.connect(url)
    js = nc.jetstream()
    last = (await js.stream_info("USAGE")).state.last_seq
    start = max(1, last - last_n + 1) if last_n else 1
    sub = await js.pull_subscribe("usage.>", stream="USAGE", config=ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
        mem_storage=True, inactive_threshold=60))
    kept, seq = [], 0
    while seq < last:
        for msg in await sub.fetch(min(1000, last - seq if seq else last - start + 1), timeout=5):
            seq = msg.metadata.sequence.stream
            kept.append(UsageEvent.from_dict(orjson.loads(msg.data)))
    await nc.close()
    return len(kept)


async def _paced_usage_calls(lago: LagoEmulatorProcess, subscriptions: int) -> float:
    """One current-usage call per subscription at Lago Cloud's limit, 8 at a time: the incremental floor."""
    async with httpx.AsyncClient(base_url=f"{lago.url}/api/v1", headers={"Authorization": f"Bearer {lago.api_key}"},
                                 timeout=30) as http:
        slots, started = asyncio.Semaphore(8), time.perf_counter()

        async def call(i: int) -> None:
            await asyncio.sleep(max(0.0, started + i / USAGE_RATE - time.perf_counter()))
            async with slots:
                (await http.get(f"/customers/c{i:05d}/current_usage",
                                params={"external_subscription_id": f"sub_{i:05d}"})).raise_for_status()

        await asyncio.gather(*(call(i) for i in range(subscriptions)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    n, subs = args.events, args.subscriptions
    with tempfile.TemporaryDirectory() as tmp:
        nats_server = NatsServer(Path(tmp) / "js").start()
        lago = LagoEmulatorProcess(Path(tmp) / "lago", now=NOW).start()
        env = {**os.environ, "NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
               "NATS_STREAM_MAX_AGE_DAYS": "3650", "RECONCILE_SETTLE_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING",
               "POWERTOOLS_METRICS_NAMESPACE": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        try:
            seed(lago, subs)
            took, posted = 0.0, 0.0
            for start in range(0, n, 100_000):
                batch = events(start, min(100_000, n - start), subs, seed=start, total=n)
                t = time.perf_counter()
                asyncio.run(publish(nats_server.url, batch))
                took += time.perf_counter() - t
                t = time.perf_counter()
                ship(lago, batch)
                posted += time.perf_counter() - t
            print(f"ledger: {n:,} events for {subs:,} subscriptions published into USAGE in {took:.1f} s "
                  f"({n / took:,.0f}/s); posted to the Lago emulator in {posted:.1f} s")
            hand_all_to_lago_sync(nats_server.url)
            floor = in_child("read", "0", env=env)
            first = in_child("pass", "0", env=env)
            assert first["totals"]["caught_up"] and first["drifting"] == 0 and first["checked"] == subs, first
            report("first pass", n, first, floor, "read + decode every message (the previous version's floor)")

            # The newest usage: the last hour before Lago's clock.
            new = events(0, args.new, subs, seed=n, total=args.new, first_second=MONTH_START + SPAN_SECONDS - 3600,
                         span=3600)
            new = [{**e, "transaction_id": "new-" + e["transaction_id"]} for e in new]
            asyncio.run(publish(nats_server.url, new))
            ship(lago, new)
            hand_all_to_lago_sync(nats_server.url)
            raw = in_child("read", str(args.new), env=env)
            calls = asyncio.run(_paced_usage_calls(lago, subs))
            incremental = in_child("pass", "0", env=env)
            assert incremental["totals"]["applied"]["USAGE"] == args.new and incremental["drifting"] == 0, incremental
            baseline = raw["wall"] + calls
            print(f"\nincremental pass, {args.new:,} new events touching {incremental['checked']:,} subscriptions: "
                  f"{incremental['wall']:.2f} s wall, {incremental['cpu']:.2f} s CPU, peak RSS "
                  f"{incremental['peak_mb']:.0f} MB (interpreter and imports {incremental['base_mb']:.0f} MB)")
            print(f"  baseline: raw read of the {args.new:,} messages {raw['wall']:.2f} s + {subs:,} current-usage "
                  f"calls at 200/s {calls:.2f} s = {baseline:.2f} s; pass / baseline = "
                  f"{incremental['wall'] / baseline:.2f}x (target <= 2x)")
            counting, checking = first["seconds"]["totals"], first["seconds"]["checks"]
            per_event = counting / n
            print(f"\nthe first pass: counting {counting:.1f} s ({per_event * 1e6:.1f} us/event), checking {subs:,} "
                  f"subscriptions {checking:.1f} s (Lago's rate limits: {checking / subs * 1000:.1f} ms each)")
            print(f"extrapolation: one 15-minute pass reconciles from scratch a month of up to "
                  f"{(900 - checking) / per_event:,.0f} ledger events for {subs:,} subscriptions "
                  f"(({900:,} s - {checking:.0f} s checking) / {per_event * 1e6:.1f} us); afterwards each pass costs what "
                  f"arrived since the last")
            print(f"Lambda cost per million ledger events counted: {per_event * 1e6 * MEMORY_GB * GB_SECOND_USD * 100:.3f} "
                  f"US cents at 512 MB ({per_event * 1e6:.0f} s), plus {checking / subs * MEMORY_GB * GB_SECOND_USD * 1e5:.4f}"
                  f" cents per thousand subscriptions checked and $0.20 per million passes")
        finally:
            lago.stop()
            nats_server.stop()


def report(name: str, n: int, measured: dict, floor: dict, what: str) -> None:
    print(f"\n{name} over {n:,} ledger events: {measured['wall']:.2f} s wall ({measured['wall'] / n * 1e6:.1f} us/event), "
          f"{measured['cpu']:.2f} s CPU, peak RSS {measured['peak_mb']:.0f} MB (interpreter and imports "
          f"{measured['base_mb']:.0f} MB), {measured['checked']:,} subscriptions checked")
    print(f"  baseline, {what}: {floor['wall']:.2f} s wall ({floor['wall'] / n * 1e6:.1f} us/event), peak RSS "
          f"{floor['peak_mb']:.0f} MB; pass / baseline = {measured['wall'] / floor['wall']:.2f}x")


if __name__ == "__main__":
    main()
