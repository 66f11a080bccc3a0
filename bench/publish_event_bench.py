"""publish_event throughput on the SQS path, beside raw nats-py baselines from the same run.

    .venv/bin/python bench/publish_event_bench.py [--events N]

All three publish the same events (same subjects, payloads and headers) to the
same nats-server:
- tokenmeter: SQS batches of messages of 100 events through the handler, at Lambda's
  default batch size (10 messages) and at the template's (100 messages, 1 s window);
- raw publish_async: a nats-py loop of js.publish_async, then every PubAck awaited;
- awaited publish: a loop that awaits each js.publish in turn.
Plus the time to import the handler module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.lambda_context import Context
from local.functions import load_function_app
from local.nats_server import NatsServer

ROOT = Path(__file__).resolve().parent.parent

REPEATS = 5
PER_MESSAGE = 100




def events_for(round_: int, n: int) -> list[dict]:
    return [{"transaction_id": f"{round_:08x}{i:024x}-input", "external_subscription_id": f"sub_{i % 50}",
             "code": "llm_tokens", "timestamp": f"{1_732_646_400 + i}.000",
             "properties": {"tokens": i % 4000 + 1, "model": "llama3.1:8b", "token_type": "input"}} for i in range(n)]


def sqs_batches(events: list[dict], per_batch: int) -> list[dict]:
    bodies = [json.dumps({"events": events[i:i + PER_MESSAGE]}) for i in range(0, len(events), PER_MESSAGE)]
    return [{"Records": [{"messageId": f"m{j + k}", "body": body, "eventSource": "aws:sqs"}
                         for k, body in enumerate(bodies[j:j + per_batch])]} for j in range(0, len(bodies), per_batch)]


def bench_handler(app, rounds: list[list[dict]], per_batch: int) -> float:
    times = []
    for events in rounds:
        batches = sqs_batches(events, per_batch)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            start = time.perf_counter()
            for batch in batches:
                response = app.lambda_handler(batch, Context())
                assert response == {"batchItemFailures": []}, response
            times.append(time.perf_counter() - start)
    return min(times)


def bench_raw(url: str, rounds: list[list[dict]], *, pipelined: bool) -> float:
    from tokenmeter.nats import subject_for

    async def run() -> float:
        import nats

        nc = await nats.connect(url)
        js = nc.jetstream(timeout=5, publish_async_max_pending=4000)
        best = float("inf")
        for events in rounds:
            prepared = [(subject_for("usage", e["external_subscription_id"], e["code"]),
                         json.dumps(e, separators=(",", ":")).encode(),
                         {"Nats-Msg-Id": e["transaction_id"], "Nats-Expected-Stream": "USAGE"}) for e in events]
            start = time.perf_counter()
            if pipelined:
                futures = [await js.publish_async(s, p, headers=h) for s, p, h in prepared]
                await asyncio.gather(*futures)
            else:
                for s, p, h in prepared:
                    await js.publish(s, p, headers=h)
            best = min(best, time.perf_counter() - start)
        await nc.close()
        return best

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def bench_import(env: dict, what: str = "import app") -> float:
    """Median of 11 fresh interpreters (one import is noisy on a shared machine)."""
    code = f"import time; t = time.perf_counter(); {what}; print(time.perf_counter() - t)"
    # Run in the function's folder, as Lambda runs a handler from /var/task.
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                                  check=True, cwd=ROOT / "functions/publish_event").stdout)
                             for _ in range(11))


# What the handler cannot do without: nats-py with JetStream and Powertools' Logger and Metrics.
LIBRARIES = "import asyncio, nats, nats.js; from aws_lambda_powertools import Logger, Metrics"


def main() -> None:
    # The generated events carry fixed dates: the ledger keeps ten years, so the event contract takes them.
    os.environ.setdefault("NATS_STREAM_MAX_AGE_DAYS", "3650")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "js").start()
        try:
            env = {**os.environ, "NATS_URL": server.url, "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "us-east-1"}
            os.environ.update(env)
            app = load_function_app("publish_event")

            bench_handler(app, [events_for(999, 1000)], 10)  # connects and creates the stream
            # Interleaved rounds, best of each: drift on a busy machine hits all three alike.
            ours10 = ours = raw_async = awaited = float("inf")
            for r in range(REPEATS):
                raw_async = min(raw_async, bench_raw(server.url, [events_for(100 + r, n)], pipelined=True))
                ours10 = min(ours10, bench_handler(app, [events_for(r, n)], 10))
                ours = min(ours, bench_handler(app, [events_for(50 + r, n)], 100))
                awaited = min(awaited, bench_raw(server.url, [events_for(200 + r, n // 4)], pipelined=False) * 4)
            import_ms, libraries_ms = bench_import(env) * 1000, bench_import(env, LIBRARIES) * 1000
        finally:
            server.stop()
    rows = [("SQS path, 10-message batches, events/s", n / ours10),
            ("SQS path, 100-message batches, events/s", n / ours),
            ("raw publish_async loop, events/s", n / raw_async),
            ("awaited js.publish loop, events/s", n / awaited)]
    for name, rate in rows:
        print(f"{name:40} {rate:12,.0f}")
    for size, took in ((10, ours10), (100, ours)):
        print(f"{f'{size}-message batches / raw publish_async':40} {raw_async / took:12.2f}x   (target >= 0.8x)")
        print(f"{f'{size}-message batches / awaited js.publish':40} {awaited / took:12.2f}x   (target >= 5x)")
    print(f"{'handler import, ms':40} {import_ms:12.1f}   (target <= 250 ms)")
    print(f"{'  of which nats-py + Powertools alone, ms':40} {libraries_ms:12.1f}")


if __name__ == "__main__":
    main()
