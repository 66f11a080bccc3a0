"""count_tokens with SQS's answer time simulated: its usage events sent in batches one after another, and side by
side (a few batches under way while the records after them are read), beside the raw loop that sends the same
batches one after another, in the same run.

    .venv/bin/python -m bench.sqs_wait_bench [--records N] [--big-object N] [--latency-ms L]

SQS is an in-memory stand-in that waits ``--latency-ms`` before answering each SendMessageBatch (a batch is up to
ten 25 KB messages of events). In Lambda that wait is billed: a function is billed for its wall time. Two
workloads: the pipeline benchmark's records (local/workload.py: CloudWatch batches and S3 objects through the
template's SQS batches), and one large S3 object (Bedrock invocation logs, gzipped JSON lines), where the sends
are most of an invocation. Wall times are this machine's: Lambda at 1,024 MB has about 0.58 of a vCPU, so its
CPU part there is larger, and the wait the same.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

from bench.lambda_context import GB_SECOND_USD, REQUEST_USD, handler_environment, object_triggers, template_memory_mb
from bench.pipeline_bench import count_stage
from bench.stand_ins import MemoryS3, MemorySqs
from local.workload import cloudwatch_event, generate
from tokenmeter.metering import delivery


class SlowSqs(MemorySqs):
    def __init__(self, latency: float):
        super().__init__()
        self.latency = latency

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803 - boto3's names
        time.sleep(self.latency)  # (sleeping lets the other threads run, as waiting on a socket does)
        return super().send_message_batch(QueueUrl, Entries)


def bedrock_object(n: int) -> bytes:
    lines = [json.dumps({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-15T10:00:00Z",
        "accountId": "123456789012", "region": "us-east-1", "requestId": f"5f2a7c3e-0b7d-4a45-9a53-{i:012d}",
        "operation": "Converse", "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "input": {"inputContentType": "application/json", "inputTokenCount": 100 + i % 3000,
                  "cacheReadInputTokenCount": i % 7 * 64},
        "output": {"outputContentType": "application/json", "outputTokenCount": 10 + i % 700},
        "requestMetadata": {"subscription_id": f"sub_{i % 50}"}}) for i in range(n)]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def count_with(work, triggers: list[dict], s3: MemoryS3, sqs: MemorySqs, side_by_side: bool):
    """count_tokens over the triggers, sending to ``sqs``: its batches side by side, or one after another."""
    shared = delivery.shared_sender
    if not side_by_side:
        delivery.shared_sender = lambda: None  # the outbox's batchers then send in the calling thread
    try:
        return count_stage(work, triggers, s3, sqs)
    finally:
        delivery.shared_sender = shared


def measure(name: str, work, triggers: list[dict], s3: MemoryS3, latency: float, records: int) -> None:
    memory = template_memory_mb()["count_tokens"]
    rows = [(label, *count_with(work, triggers, s3, sqs, side)) for label, sqs, side in (
        ("SQS answering at once", MemorySqs(), True),
        (f"SQS after {latency * 1000:g} ms, one batch at a time", SlowSqs(latency), False),
        (f"SQS after {latency * 1000:g} ms, side by side", SlowSqs(latency), True))]
    sent = rows[1][2]
    raw = SlowSqs(latency)
    started = time.perf_counter()
    for start in range(0, len(sent), 10):  # (the batcher's batches are never fuller: ten messages at most)
        raw.send_message_batch("usage", [{"Id": str(i), "MessageBody": body}
                                         for i, body in enumerate(sent[start:start + 10])])
    raw_wall = time.perf_counter() - started
    print(f"\n{name}: {records:,} records, {len(sent):,} usage-queue messages, count_tokens at {memory} MB")
    print(f"{'':48} {'invocations':>11} {'wall s':>7} {'CPU s':>6} {'records/s':>10} {'billed s':>8} "
          f"{'cents per M records':>19}")
    for label, stage, bodies in rows:
        assert sorted(bodies) == sorted(sent), "the runs sent different messages"
        cents = (stage.billed_ms / 1000 * memory / 1024 * GB_SECOND_USD["x86_64"]
                 + stage.invocations * REQUEST_USD) / records * 1e8
        print(f"{label:48} {stage.invocations:11,} {stage.wall:7.2f} {stage.cpu:6.2f} {records / stage.wall:10,.0f} "
              f"{stage.billed_ms / 1000:8.2f} {cents:19.3f}")
    print(f"{'raw loop: the same messages, batch after batch':48} {'':11} {raw_wall:7.2f} {'':6} "
          f"{records / raw_wall:10,.0f}")
    side = rows[2][1].wall
    print(f"side by side: {rows[1][1].wall / side:.2f}x the speed of one batch at a time, "
          f"{raw_wall / side:.2f}x the raw send loop's")


def main() -> None:
    handler_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--big-object", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    work = generate(args.records, len, len, text_share=0, bad_every=0, ghost_every=0)
    triggers = [cloudwatch_event(batch) for batch in work.cloudwatch] + object_triggers(list(work.s3_objects))
    measure("the pipeline benchmark's records", work, triggers, MemoryS3(work.s3_objects), latency, args.records)

    big = {"AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/15/10/big.json.gz":
           bedrock_object(args.big_object)}
    big_work = type("Work", (), {"s3_objects": big})
    measure("one large object of Bedrock invocation logs", big_work, object_triggers(list(big)), MemoryS3(big),
            latency, args.big_object)


if __name__ == "__main__":
    main()
