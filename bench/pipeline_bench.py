"""End to end: inference records that carry counts, from logs to Lago, stage by stage, beside each
stage's raw baseline from the same run, and what it costs on Lambda per million records.

    .venv/bin/python bench/pipeline_bench.py [--records N]

Stages, each run in this process so its CPU time is measured (time.process_time, all threads):
1. count_tokens on the workload's CloudWatch Logs batches and S3 objects (local/workload.py, no
   text-only records, no bad ones), against a bare json.loads loop over the same records (bench/baselines.py). SQS and S3 are
   in-memory stand-ins here: their calls cost Lambda wall time but next to no CPU.
2. publish_event on the UsageQueue messages stage 1 produced, 100 per invocation (the template's
   batch size), into a real nats-server, against a raw nats-py publish_async loop of the same events
   (a second nats-server, so dedup does not flatter either).
3. lago_sync until the consumer is drained, into the Lago emulator, against the slower of a raw
   fetch+ack loop on the same stream and raw 100-event POSTs to the same emulator.
Then the reconcile function's first pass over the whole ledger (it counts every event into the running
totals and checks every subscription; later passes cost what is new: bench/reconcile_bench.py).

Cost per million records, at Lambda's published x86 price ($0.0000166667 per GB-s, us-east-1) plus
$0.20 per million requests, two ways:
- as the issue defines it: measured CPU seconds x the template's memory size in GB;
- CPU-share adjusted: Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB),
  so CPU-bound work at M MB runs cpu_seconds x 1769/M of wall time, billed at M/1024 GB, that is
  cpu_seconds x 1.73 GB-s for any M <= 1,769 MB. This is the figure to plan with.
Neither counts the wall time spent waiting on SQS, NATS and Lago over a real network (count_tokens' waits on S3 and
SQS, simulated: bench/s3_batch_bench.py, bench/sqs_wait_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.baselines import json_loads_loop, object_lines, timed
from bench.lago_sync_bench import raw_fetch_ack, raw_posts
from bench.lambda_context import GB_SECOND_USD, REQUEST_USD, VCPU_MB, Context, object_triggers, template_memory_mb
from bench.publish_event_bench import bench_raw
from bench.stand_ins import MemoryS3, MemorySqs
from local.functions import load_function_app
from local.lago_emulator.process import LagoEmulatorProcess
from local.nats_server import NatsServer
from local.workload import cloudwatch_event, generate, lago_seed

ROOT = Path(__file__).resolve().parent.parent

X86_GB_SECOND_USD = GB_SECOND_USD["x86_64"]
MEMORY_MB = template_memory_mb()
SQS_BATCH = 100
LAGO_NOW = "2026-11-15T12:00:00Z"


class Stage:
    def __init__(self, name: str):
        self.name, self.wall, self.cpu, self.invocations, self.billed_ms = name, 0.0, 0.0, 0, 0
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 - one for the stage, opened outside the timing

    @contextlib.contextmanager
    def measure(self):
        """One invocation: its wall and CPU time, and its duration as Lambda bills it (whole milliseconds)."""
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(self._devnull):  # Powertools' EMF lines, written as Lambda would
            yield
        took = time.perf_counter() - wall
        self.wall += took
        self.cpu += time.process_time() - cpu
        self.invocations += 1
        self.billed_ms += math.ceil(took * 1000)

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "invocations": self.invocations, "billed_ms": self.billed_ms}


def count_stage(work, triggers: list[dict], s3: MemoryS3 | None = None,
                sqs: MemorySqs | None = None) -> tuple[Stage, list[str]]:
    sqs, s3 = sqs or MemorySqs(), s3 or MemoryS3(work.s3_objects)
    os.environ.update({"USAGE_QUEUE_URL": "usage", "DEAD_LETTER_QUEUE_URL": "dead", "METERING_CONFIG": json.dumps(
        {"subscription_from": ["requestMetadata.subscription_id", "user", "metadata.customer", "end_user",
                               "attributes.user.id"]})})
    app = load_function_app("count_tokens")
    app.aws_client = lambda name: sqs if name == "sqs" else s3
    stage = Stage("count_tokens")
    for trigger in triggers:
        with stage.measure():
            result = app.lambda_handler(trigger, Context())
        assert not result.get("dead_letters") and not result.get("batchItemFailures"), result
    assert "dead" not in sqs.bodies, sqs.bodies["dead"][:1]
    return stage, sqs.bodies["usage"]


def publish_stage(bodies: list[str], url: str, batch: int = SQS_BATCH) -> Stage:
    """publish_event on ``batch`` UsageQueue messages per invocation."""
    os.environ["NATS_URL"] = url
    app = load_function_app("publish_event")
    stage = Stage("publish_event")
    for start in range(0, len(bodies), batch):
        records = [{"messageId": str(i), "body": b, "eventSource": "aws:sqs"}
                   for i, b in enumerate(bodies[start:start + batch])]
        with stage.measure():
            result = app.lambda_handler({"Records": records}, Context())
        assert result == {"batchItemFailures": []}, result
    app._runtime.close()
    app._runtime = None
    return stage


def sync_stage(events: int) -> Stage:
    """lago_sync invoked until the consumer is drained; every event shipped once."""
    app = load_function_app("lago_sync")
    stage, shipped = Stage("lago_sync"), 0
    while True:
        with stage.measure():
            summary = app.lambda_handler({}, Context())
        shipped += summary["shipped"]
        if summary["drained"]:  # a further run would only wait out an empty fetch
            break
    assert shipped == events, (shipped, events, summary)
    app._runtime.nats.run(app._runtime.nats.close())
    app._runtime = None
    return stage


def reconcile_stage() -> Stage:
    check = load_function_app("reconcile")
    reconcile = Stage("reconciliation pass")
    with reconcile.measure():
        summary = check.lambda_handler({}, Context())
    assert summary["reconciliation"]["drifting"] == [], summary["reconciliation"]
    check._runtime.nats.run(check._runtime.nats.close())
    check._runtime = None
    return reconcile


def main() -> None:
    # The generated events carry fixed dates: the ledger keeps ten years, so the event contract takes them.
    os.environ.setdefault("NATS_STREAM_MAX_AGE_DAYS", "3650")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    n = parser.parse_args().records
    work = generate(n, len, len, text_share=0, bad_every=0, ghost_every=0)
    triggers = [cloudwatch_event(batch) for batch in work.cloudwatch] + object_triggers(list(work.s3_objects))
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.json"
        seed.write_text(json.dumps(lago_seed(sorted({m for _, m, _ in work.truth}), monthly_only=True)))
        nats_server, raw_nats = NatsServer(Path(tmp) / "js").start(), NatsServer(Path(tmp) / "raw").start()
        lago = LagoEmulatorProcess(Path(tmp) / "lago", seed=seed, now=LAGO_NOW).start()
        try:
            os.environ.update({"LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key, "RECONCILE_SETTLE_SECONDS": "0",
                               "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "us-east-1"})
            records = [line[line.find("{"):] for batch in work.cloudwatch for _, _, line in batch] + [
                line for body in work.s3_objects.values() for line in object_lines(body)]
            # Best of three for both sides, taken in turns: one run of either varies by a third on this machine
            # (the collector walking what earlier runs left), and its speed drifts by a tenth over a minute.
            parses, counts = [], []
            for _ in range(3):
                parses.append(timed(lambda: json_loads_loop(records)))
                counts.append(count_stage(work, triggers))
            parse = min(parses)
            count, bodies = min(counts, key=lambda run: run[0].cpu)
            events = [e for body in bodies for e in json.loads(body)["events"]]
            assert len(events) == work.events
            _ensure_stream(raw_nats.url)
            raw_publish = bench_raw(raw_nats.url, [events], pipelined=True)
            publish = publish_stage(bodies, nats_server.url)
            sync, reconcile = sync_stage(len(events)), reconcile_stage()
            raw_ship = max(raw_fetch_ack(nats_server.url, len(events)),
                           raw_posts(lago, [{**e, "transaction_id": "raw-" + e["transaction_id"]} for e in events]))
        finally:
            lago.stop()
            raw_nats.stop()
            nats_server.stop()
    report(n, len(events), [(count, "json.loads loop", parse), (publish, "raw publish_async", raw_publish),
                            (sync, "slower of fetch+ack, 100-event POSTs", raw_ship)], reconcile)


def report(n: int, events: int, stages: list[tuple[Stage, str, float]], reconcile: Stage) -> None:
    total_wall = sum(s.wall for s, _, _ in stages)
    print(f"{n:,} records with counts -> {events:,} usage events\n")
    print(f"{'stage':15} {'records/s':>10} {'share':>6} {'CPU us/rec':>10}   {'raw baseline':38} {'records/s':>10} {'ratio':>6}")
    literal = adjusted = requests = 0.0  # US cents per million records
    for stage, baseline, took in stages:
        per_record_cpu = stage.cpu / n
        requests += 1e8 * stage.invocations / n * REQUEST_USD
        literal += 1e8 * per_record_cpu * MEMORY_MB[stage.name] / 1024 * X86_GB_SECOND_USD
        # Below one vCPU, wall time is cpu x 1769/M at M/1024 GB; above it, one thread gets no faster.
        adjusted += 1e8 * per_record_cpu * max(MEMORY_MB[stage.name], VCPU_MB) / 1024 * X86_GB_SECOND_USD
        print(f"{stage.name:15} {n / stage.wall:10,.0f} {stage.wall / total_wall:6.0%} {per_record_cpu * 1e6:10.1f}   "
              f"{baseline:38} {n / took:10,.0f} {took / stage.wall:5.2f}x")
    print(f"{'end to end':15} {n / total_wall:10,.0f} {'100%':>6} {sum(s.cpu for s, _, _ in stages) / n * 1e6:10.1f}")
    print(f"\nfirst reconciliation pass over {events:,} ledger events: {reconcile.wall:.2f} s wall, "
          f"{reconcile.cpu:.2f} s CPU (later passes read only what is new: bench/reconcile_bench.py)")
    for stage, _, _ in stages:
        print(f"{stage.name:15} {stage.invocations:6} invocations, {MEMORY_MB[stage.name]} MB")
    per_trigger = n / stages[0][0].invocations
    print(f"\nLambda cost per million records, x86 us-east-1, US cents (target <= 0.40, CPU-share adjusted):\n"
          f"  requests ({per_trigger:,.0f} records per log trigger):     {requests:.3f}\n"
          f"  CPU seconds x template memory, + requests:  {literal + requests:.3f}\n"
          f"  CPU-share adjusted, + requests (plan with): {adjusted + requests:.3f}")


def _ensure_stream(url: str) -> None:
    """The USAGE stream, as publish_event would create it, on the raw baseline's own server."""
    from tokenmeter.nats import ManagedConnection, NatsSettings

    connection = ManagedConnection(NatsSettings.from_env({**os.environ, "NATS_URL": url}))

    async def ensure() -> None:
        await connection.jetstream()
        await connection.close()

    connection.run(ensure())
    connection.loop.close()


if __name__ == "__main__":
    asyncio.set_event_loop(None)
    main()
    # The raw baselines leave nats-py tasks on closed loops; their complaints at exit are noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda _: None
