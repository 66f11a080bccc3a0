"""What Lambda hands the benchmarks' handlers: a context object (generous time, fixed names), the environment
they all read, the memory each function is deployed with, and what Lambda charges for it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from local.invoke import load_template

ROOT = Path(__file__).resolve().parent.parent
# Lambda's prices in us-east-1 (first tier) and its CPU share: one vCPU at 1,769 MB.
GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
REQUEST_USD = 0.20 / 1_000_000
VCPU_MB = 1769
FUNCTIONS = {"count_tokens": "CountTokensFunction", "publish_event": "PublishEventFunction",
             "lago_sync": "LagoSyncFunction", "reconcile": "ReconcileFunction"}


@functools.cache
def _template() -> dict:
    return load_template(ROOT / "template.yaml")


def template_memory_mb() -> dict[str, int]:
    """Each function's MemorySize in template.yaml (its own, else the Globals')."""
    template = _template()
    default = template["Globals"]["Function"]["MemorySize"]
    return {name: int(template["Resources"][logical]["Properties"].get("MemorySize", default))
            for name, logical in FUNCTIONS.items()}


def template_objects_per_trigger() -> int:
    """How many S3 notifications count_tokens takes per invocation (InferenceLogObjectBatchSize's default)."""
    return int(_template()["Parameters"]["InferenceLogObjectBatchSize"]["Default"])


def object_triggers(keys: list[str], bucket: str = "logs") -> list[dict]:
    """The objects' notifications as the template delivers them: SQS batches of its batch size."""
    from local.workload import queued_s3_event

    size = template_objects_per_trigger()
    return [queued_s3_event(bucket, keys[start:start + size]) for start in range(0, len(keys), size)]


def handler_environment() -> None:
    """The environment every benchmarked handler reads: quiet logs, a region, and a ledger that keeps the generated
    events' fixed dates (ten years)."""
    os.environ.setdefault("NATS_STREAM_MAX_AGE_DAYS", "3650")
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "us-east-1"})


class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000
