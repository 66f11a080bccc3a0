"""Power tuning: each function's duration and Lambda cost at 256 MB to 2 GB, records per log trigger, and
publish_event's SQS batch size, measured under Lambda's CPU share.

    .venv/bin/python -m bench.power_tuning_bench [--records N]     (as root: it makes a cgroup)

Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB, through a CFS quota. The
benchmark does the same: each run is a fresh process that sets up (workload, imports) and then moves
itself into a cgroup whose CPU quota is memory/1,769 of a CPU per 100 ms period, and runs the pipeline's
stages there (bench/pipeline_bench.py: count_tokens with in-memory SQS and S3, publish_event into a real
nats-server, lago_sync into the Lago emulator, both servers outside the quota, fresh for each run). Each
invocation's wall time, rounded up to the millisecond, is what Lambda bills; the cost per million records
adds $0.20 per million requests. Prices: us-east-1, x86 $0.0000166667 and arm64 $0.0000133334 per GB-s.
The arm64 column assumes the same durations: this machine has no Graviton to measure them on.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.lambda_context import GB_SECOND_USD, REQUEST_USD, VCPU_MB, object_triggers, template_memory_mb

ROOT = Path(__file__).resolve().parent.parent
MEMORY_SIZES = (256, 512, 1024, 1536, 1769, 2048)
PERIOD_US = 100_000
STAGES = ("count_tokens", "publish_event", "lago_sync")
TEMPLATE_MB = template_memory_mb()


class CpuQuota:
    """A cgroup (v1 cpu controller, or v2 with cpu enabled) whose processes share ``cpus`` CPUs' time."""

    def __init__(self, name: str):
        v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
        controllers = v2 / "cgroup.controllers"
        if (v1 / "cpu.cfs_quota_us").exists():
            self.path, self.v2 = v1 / name, False
        elif controllers.exists() and "cpu" in controllers.read_text().split():
            self.path, self.v2 = v2 / name, True
        else:
            raise SystemExit("power tuning needs a cgroup CPU controller (/sys/fs/cgroup/cpu or cgroup v2's cpu)")
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as exc:
            raise SystemExit(f"power tuning needs to create a cgroup, as root: {exc}") from None

    def set(self, cpus: float) -> None:
        quota = int(cpus * PERIOD_US)
        if self.v2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))

    def remove(self) -> None:
        self.path.rmdir()


def run(quota: CpuQuota, memory: int, records: int, batch: float, sqs_batch: int, stages: tuple[str, ...],
        repeats: int = 1) -> dict:
    """Each stage's billed milliseconds, invocations and CPU in a fresh process at ``memory`` MB's CPU share:
    of ``repeats`` runs, the median by billed time, stage by stage (a busy moment of the machine skews one)."""
    runs = [_run(quota, memory, records, batch, sqs_batch, stages) for _ in range(repeats)]
    median = {name: sorted((r[name] for r in runs), key=lambda s: s["billed_ms"])[len(runs) // 2] for name in stages}
    return {**runs[0], **median}


@functools.cache
def lago_seed_json(records: int) -> str:
    """The emulator's plans and subscriptions for the workload's models (the same for every run)."""
    from local.workload import generate, lago_seed

    work = generate(records, len, len, text_share=0, bad_every=0, ghost_every=0)
    return json.dumps(lago_seed(sorted({m for _, m, _ in work.truth}), monthly_only=True))


def _run(quota: CpuQuota, memory: int, records: int, batch: float, sqs_batch: int, stages: tuple[str, ...]) -> dict:
    from local.lago_emulator.process import LagoEmulatorProcess
    from local.nats_server import NatsServer

    quota.set(memory / VCPU_MB)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.json"
        seed.write_text(lago_seed_json(records))
        nats = NatsServer(Path(tmp) / "js").start()
        lago = LagoEmulatorProcess(Path(tmp) / "lago", seed=seed, now="2026-11-15T12:00:00Z").start()
        try:
            env = {**os.environ, "NATS_URL": nats.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                   "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "us-east-1",
                   "NATS_STREAM_MAX_AGE_DAYS": "3650", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)}
            child = subprocess.run(
                [sys.executable, "-m", "bench.power_tuning_bench", "--child", str(quota.path), "--records",
                 str(records), "--batch", str(batch), "--sqs-batch", str(sqs_batch), "--stages", ",".join(stages)],
                cwd=ROOT, env=env, capture_output=True, text=True)
        finally:
            lago.stop()
            nats.stop()
    if child.returncode:
        raise SystemExit(f"the run at {memory} MB failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.splitlines()[-1])


def child(cgroup: Path, records: int, batch: float, sqs_batch: int, stages: list[str]) -> None:
    """Set up outside the quota, then join it and run the stages (bench/pipeline_bench.py's)."""
    from bench.pipeline_bench import count_stage, publish_stage, sync_stage
    from local.functions import load_function_app
    from local.workload import cloudwatch_event, generate

    work = generate(records, len, len, text_share=0, bad_every=0, ghost_every=0, batch=batch)
    triggers = [cloudwatch_event(b) for b in work.cloudwatch] + object_triggers(list(work.s3_objects))
    for name in stages:
        load_function_app(name)  # imports before the quota: a cold start is paid once per environment
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))  # every thread of this process, from here on
    found = {"records": work.records, "triggers": len(triggers)}
    count, bodies = count_stage(work, triggers)
    found["count_tokens"] = count.as_dict()
    if "publish_event" in stages:
        found["publish_event"] = publish_stage(bodies, os.environ["NATS_URL"], sqs_batch).as_dict()
    if "lago_sync" in stages:
        events = sum(len(json.loads(b)["events"]) for b in bodies)
        found["lago_sync"] = sync_stage(events).as_dict()
    print(json.dumps(found))


def cents_per_million(stage: dict, records: int, memory: int, architecture: str) -> float:
    compute = stage["billed_ms"] / 1000 * memory / 1024 * GB_SECOND_USD[architecture]
    return (compute + stage["invocations"] * REQUEST_USD) / records * 1e8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per memory size (the median is shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--sqs-batch", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--stages", default=",".join(STAGES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.records, args.batch, args.sqs_batch, args.stages.split(","))
        return
    quota = CpuQuota(f"tokenmeter-bench-{os.getpid()}")
    try:
        cheapest = tuning(quota, args.records, args.repeats)
        per_trigger = trigger_sizes(quota, args.records, args.repeats)
        sqs_batches(quota, args.records, args.repeats)
    finally:
        quota.remove()
    summary(cheapest, per_trigger)


def tuning(quota: CpuQuota, records: int, repeats: int) -> dict[str, tuple[int, float, float]]:
    """The table by memory size; returns each function's cheapest (MB, x86 c/M, arm64 c/M)."""
    print(f"{records:,} records with counts (bench/pipeline_bench.py's workload); at each memory size the median "
          f"of {repeats} fresh runs\n")
    print(f"{'function':14} {'MB':>5} {'vCPU':>5} {'ms/invocation':>14} {'CPU s':>6} {'x86 c/M':>8} {'arm64 c/M':>9}")
    cheapest: dict[str, tuple[int, float, float]] = {}
    for memory in MEMORY_SIZES:
        found = run(quota, memory, records, 1.0, 100, STAGES, repeats)
        for name in STAGES:
            stage = found[name]
            x86 = cents_per_million(stage, found["records"], memory, "x86_64")
            arm = cents_per_million(stage, found["records"], memory, "arm64")
            if name not in cheapest or x86 < cheapest[name][1]:
                cheapest[name] = (memory, x86, arm)
            mark = "  <- template" if TEMPLATE_MB[name] == memory else ""
            print(f"{name:14} {memory:5} {memory / VCPU_MB:5.2f} {stage['billed_ms'] / stage['invocations']:14,.1f} "
                  f"{stage['cpu']:6.2f} {x86:8.3f} {arm:9.3f}{mark}")
    print("(c/M: US cents per million records, requests included; ms/invocation: billed duration)\n")
    return cheapest


def trigger_sizes(quota: CpuQuota, records: int, repeats: int) -> tuple[float, float, float]:
    """count_tokens by records per trigger; returns the largest size's (records/trigger, x86, arm64 c/M)."""
    memory = TEMPLATE_MB["count_tokens"]
    print(f"count_tokens at {memory} MB by records per log trigger (CloudWatch batch / S3 object size):")
    print(f"{'records/trigger':>16} {'ms/invocation':>14} {'x86 c/M':>8} {'of which requests':>18}")
    for batch in (0.25, 1.0, 4.0, 16.0):
        found = run(quota, memory, records, batch, 100, ("count_tokens",), repeats)
        stage, n = found["count_tokens"], found["records"]
        requests = stage["invocations"] * REQUEST_USD / n * 1e8
        x86, arm = (cents_per_million(stage, n, memory, arch) for arch in ("x86_64", "arm64"))
        print(f"{n / found['triggers']:16,.0f} {stage['billed_ms'] / stage['invocations']:14,.1f} "
              f"{x86:8.3f} {requests:18.3f}")
    print()
    return n / found["triggers"], x86, arm


def sqs_batches(quota: CpuQuota, records: int, repeats: int) -> None:
    memory = TEMPLATE_MB["publish_event"]
    print(f"publish_event at {memory} MB by SQS batch size (messages of up to 100 events per invocation):")
    print(f"{'messages/invocation':>20} {'ms/invocation':>14} {'x86 c/M':>8}")
    for size in (10, 100):
        found = run(quota, memory, records, 1.0, size, ("count_tokens", "publish_event"), repeats)
        stage = found["publish_event"]
        print(f"{size:20} {stage['billed_ms'] / stage['invocations']:14,.1f} "
              f"{cents_per_million(stage, found['records'], memory, 'x86_64'):8.3f}")
    print()


def summary(cheapest: dict[str, tuple[int, float, float]], per_trigger: tuple[float, float, float]) -> None:
    """The pipeline at each function's cheapest memory, count_tokens at the largest triggers measured."""
    rest = [name for name in STAGES if name != "count_tokens"]
    x86 = per_trigger[1] + sum(cheapest[name][1] for name in rest)
    arm = per_trigger[2] + sum(cheapest[name][2] for name in rest)
    sizes = ", ".join(f"{name} {cheapest[name][0]} MB" for name in rest)
    print(f"the pipeline per million records, count_tokens at {per_trigger[0]:,.0f} records per trigger and "
          f"{TEMPLATE_MB['count_tokens']} MB, {sizes}: x86 {x86:.3f} US cents, arm64 {arm:.3f} "
          "(if Graviton runs as fast; target <= 0.40)")


if __name__ == "__main__":
    main()
