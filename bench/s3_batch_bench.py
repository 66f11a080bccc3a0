"""S3 objects of one inference each (LiteLLM's S3 logger writes them so) through count_tokens, with S3's
first-byte wait simulated: notified one per invocation, as a bucket invoking the function directly does, and in
the template's SQS batches, whose GETs start a few ahead of their reading; beside a plain boto3-style loop that
GETs, reads and parses the same objects one after another, in the same run.

    .venv/bin/python -m bench.s3_batch_bench [--objects N] [--latency-ms L]

S3 is an in-memory stand-in that waits ``--latency-ms`` before answering each GetObject (its first byte; the
body then comes at once). In Lambda that wait is billed: a function is billed for its wall time, and this
benchmark reports that wall time as Lambda rounds it (whole ms per invocation), and what a million such
records cost at the template's memory size, x86 us-east-1, with the requests.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.baselines import timed
from bench.lambda_context import GB_SECOND_USD, REQUEST_USD, handler_environment, object_triggers, template_memory_mb
from bench.pipeline_bench import count_stage
from bench.stand_ins import MemoryS3
from local.workload import s3_event


class SlowS3(MemoryS3):
    def __init__(self, objects: dict[str, bytes], latency: float):
        super().__init__(objects)
        self.latency = latency

    def get_object(self, **kwargs):
        time.sleep(self.latency)  # (sleeping lets the other threads run, as waiting on a socket does)
        return super().get_object(**kwargs)


def one_inference_objects(n: int) -> dict[str, bytes]:
    objects = {}
    for i in range(n):
        record = {"id": f"chatcmpl-{i:029d}", "object": "chat.completion", "created": 1763208000 + i,
                  "model": "gpt-4o-mini", "user": f"sub_{i % 20}",
                  "usage": {"prompt_tokens": 100 + i % 900, "completion_tokens": 10 + i % 90,
                            "prompt_tokens_details": {"cached_tokens": 0}}}
        objects[f"litellm/2026/11/15/{i:06d}.json"] = json.dumps(record).encode()
    return objects


def main() -> None:
    handler_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    objects = one_inference_objects(args.objects)
    s3 = SlowS3(objects, args.latency_ms / 1000)
    work = type("Work", (), {"s3_objects": objects})
    keys = list(objects)

    def raw_loop() -> None:
        for key in keys:
            json.loads(s3.get_object(Bucket="logs", Key=key)["Body"].read())

    raw = timed(raw_loop)
    direct, _ = count_stage(work, [s3_event("logs", key) for key in keys], s3)
    queued, _ = count_stage(work, object_triggers(keys), s3)
    memory, n = template_memory_mb()["count_tokens"], len(keys)
    print(f"{n:,} objects of one inference each, S3 answering after {args.latency_ms:g} ms, count_tokens at {memory} MB")
    print(f"{'':44} {'invocations':>11} {'wall s':>7} {'objects/s':>9} {'billed s':>8} {'cents per M records':>19}")
    for name, stage in (("notified one per invocation", direct), ("SQS batches, GETs started ahead", queued)):
        cents = (stage.billed_ms / 1000 * memory / 1024 * GB_SECOND_USD["x86_64"] + stage.invocations * REQUEST_USD) / n * 1e8
        print(f"{name:44} {stage.invocations:11,} {stage.wall:7.2f} {n / stage.wall:9,.0f} {stage.billed_ms / 1000:8.2f} "
              f"{cents:19.3f}")
    print(f"{'raw loop: GET, read, json.loads in turn':44} {'':11} {raw:7.2f} {n / raw:9,.0f}")
    print(f"SQS batches against the raw loop: {raw / queued.wall:.2f}x its speed")


if __name__ == "__main__":
    main()
