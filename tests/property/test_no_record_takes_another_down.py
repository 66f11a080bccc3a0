"""No record takes another down: a bad record between two good ones is dead-lettered with its reason and
both good ones are metered exactly once, whatever the bad one is and however it arrives (CloudWatch
batch, S3 object); an object is read within bounds of memory and time; a read that fails part-way is
resumed or fails the invocation, never taken for the end of the object."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, LambdaContext, cloudwatch_event, drain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile_input import json_values, records

from tokenmeter.metering.pipeline import OutOfTime
from tokenmeter.metering.s3_objects import S3ReadError, s3_records

GOOD_SUB = "sub_good_7f3a9c"  # no generated record names it


def good(n: int) -> str:
    return json.dumps({"id": f"chatcmpl-good{n:020d}", "object": "chat.completion", "created": 1794744000 + n,
                       "model": "gpt-4o", "user": GOOD_SUB, "usage": {"prompt_tokens": 10 + n, "completion_tokens": n}})


DEEP = '{"user": "sub_x", "model": "gpt-4o", "usage": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
BAD = {  # a bad record as it is logged, and the reason it must be dead-lettered with
    "nested 5,000 deep": (DEEP, "malformed_json"),
    "a Unicode digit for a timestamp": (json.dumps({"model": "llama3.2:3b", "prompt": "hi", "completion": "yo",
                                                    "timestamp": "²", "user": "s"}), "invalid_timestamp"),
    "a number for a text part": (json.dumps({"model": "llama3.2:3b", "timestamp": 1794744000, "user": "s", "messages": [
        {"role": "user", "content": [{"type": "text", "text": 5}]}]}), "invalid_record"),
    "a user of a million characters": (good(9).replace(GOOD_SUB, "u" * 1_000_000), "invalid_identifier"),
    "a model of a million characters": (good(9).replace("gpt-4o", "m" * 1_000_000), "invalid_identifier"),
    "a lone surrogate in the user": (good(9).replace(GOOD_SUB, "sub\\udc80"), "invalid_identifier"),
    "a lone surrogate in the model": (good(9).replace("gpt-4o", "gpt\\ud800"), "invalid_identifier"),
    "a line break in the user": (good(9).replace(GOOD_SUB, "sub\\r\\nInjected: 1"), "invalid_identifier"),
    "an integer of 5,000 digits": (good(9).replace(f'"{GOOD_SUB}"', "9" * 5000), "malformed_json"),
}


def billed(aws) -> dict[str, dict]:
    """The usage events on the queue by transaction id; every id once."""
    events = [e for body in drain(aws.sqs, aws.usage_url) for e in body["events"]]
    ids = [e["transaction_id"] for e in events]
    assert len(ids) == len(set(ids))
    return {e["transaction_id"]: e for e in events}


def good_tokens(events: dict[str, dict]) -> list[int]:
    return sorted(e["properties"]["tokens"] for e in events.values() if e["external_subscription_id"] == GOOD_SUB)


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_record_in_a_cloudwatch_batch_costs_only_itself(count_tokens, aws, kind):
    line, reason = BAD[kind]
    summary = count_tokens.lambda_handler(cloudwatch_event([good(1), line, good(2)]), LambdaContext())
    assert summary["metered"] == 2 and summary["dead_letters"] == {reason: 1}, summary
    assert good_tokens(billed(aws)) == [1, 2, 11, 12]  # good(n): 10 + n prompt and n completion tokens
    [letter] = drain(aws.sqs, aws.dead_url)
    assert letter["reason"] == reason and letter["record"][:20] == line[:20]


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_record_in_an_s3_object_costs_only_itself(count_tokens, aws, kind):
    line, reason = BAD[kind]
    aws.s3.put_object(Bucket="inference-logs", Key="mixed.jsonl.gz",
                      Body=gzip.compress("\n".join([good(1), line, good(2)]).encode()))
    summary = count_tokens.lambda_handler(s3_event("mixed.jsonl.gz"), LambdaContext())
    assert summary["metered"] == 2 and summary["dead_letters"] == {reason: 1}, summary
    assert good_tokens(billed(aws)) == [1, 2, 11, 12]


def test_an_array_element_too_deep_to_write_back_is_still_a_dead_letter(count_tokens, aws):
    # Deep enough that no JSON encoder writes it back into the dead letter, shallow enough to be parsed.
    body = "[" + good(1) + ", " + '{"a": ' * 1010 + "1" + "}" * 1010 + ", " + good(2) + "]"
    aws.s3.put_object(Bucket="inference-logs", Key="array.json", Body=body.encode())
    summary = count_tokens.lambda_handler(s3_event("array.json"), LambdaContext())
    assert summary["metered"] == 2 and sum(summary["dead_letters"].values()) == 1, summary
    assert good_tokens(billed(aws)) == [1, 2, 11, 12]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), records.map(json.dumps), json_values.map(json.dumps),
                 st.sampled_from([line for line, _ in BAD.values()])))
def test_whatever_sits_between_two_good_records_they_are_billed_once(count_tokens, aws, middle):
    summary = count_tokens.lambda_handler(cloudwatch_event([good(1), middle, good(2)]), LambdaContext())
    assert summary["records"] == 3
    assert good_tokens(billed(aws)) == [1, 2, 11, 12]
    drain(aws.sqs, aws.dead_url)


def s3_event(*keys: str, version_id: str | None = None, etag: str | None = None) -> dict:
    def obj(key):
        found = {"key": key}
        if version_id:
            found["versionId"] = version_id
        if etag:
            found["eTag"] = etag
        return found

    return {"Records": [{"s3": {"bucket": {"name": "inference-logs"}, "object": obj(k)}} for k in keys]}


def test_the_version_the_notification_named_is_read(count_tokens, aws):
    aws.s3.put_bucket_versioning(Bucket="inference-logs", VersioningConfiguration={"Status": "Enabled"})
    first = aws.s3.put_object(Bucket="inference-logs", Key="log.jsonl", Body=good(1).encode())
    aws.s3.put_object(Bucket="inference-logs", Key="log.jsonl", Body=good(2).encode())  # overwritten before read
    count_tokens.lambda_handler(s3_event("log.jsonl", version_id=first["VersionId"]), LambdaContext())
    assert good_tokens(billed(aws)) == [1, 11]


def test_an_object_overwritten_before_it_is_read_is_a_dead_letter_without_versioning(count_tokens, aws):
    first = aws.s3.put_object(Bucket="inference-logs", Key="log.jsonl", Body=good(1).encode())
    aws.s3.put_object(Bucket="inference-logs", Key="log.jsonl", Body=good(2).encode())
    summary = count_tokens.lambda_handler(s3_event("log.jsonl", etag=first["ETag"].strip('"')), LambdaContext())
    assert summary["dead_letters"] == {"object_changed": 1} and billed(aws) == {}


class FlakyS3:
    """An S3 whose object body breaks off after ``fail_at`` bytes, ``failures`` times; a ranged GET resumes."""

    class exceptions:  # noqa: N801 - boto3's naming
        class NoSuchKey(Exception):
            pass

    def __init__(self, body: bytes, fail_at: int, failures: int):
        self.body, self.fail_at, self.failures, self.ranges = body, fail_at, failures, []

    def get_object(self, Bucket, Key, Range=None, **_):  # noqa: N803 - boto3's naming
        start = int(Range[len("bytes="):].rstrip("-")) if Range else 0
        self.ranges.append(start)
        return {"Body": _Breaking(self, self.body[start:], start), "ETag": '"e"'}


class _Breaking(io.BytesIO):
    def __init__(self, s3: FlakyS3, data: bytes, start: int):
        super().__init__(data)
        self.s3, self.start = s3, start

    def read(self, size=-1):
        if self.s3.failures and self.start + self.tell() >= self.s3.fail_at:
            self.s3.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


def lines_of(items) -> list:
    from tokenmeter.metering.records import RawRecord

    return [i for i in items if isinstance(i, RawRecord)]


def test_a_read_that_breaks_off_is_resumed_where_it_stopped():
    body = gzip.compress("\n".join(good(i) for i in range(3000)).encode())
    s3 = FlakyS3(body, fail_at=len(body) // 2, failures=2)
    found = lines_of(s3_records(s3, "b", "k.jsonl.gz"))
    assert len(found) == 3000 and s3.ranges[0] == 0 and len(s3.ranges) == 3  # resumed twice, mid-object


def test_a_read_that_keeps_failing_fails_the_invocation():
    body = "\n".join(good(i) for i in range(3000)).encode()
    s3 = FlakyS3(body, fail_at=len(body) // 2, failures=100)
    with pytest.raises(S3ReadError, match="reading failed at byte"):
        lines_of(s3_records(s3, "b", "k.jsonl"))


def test_running_out_of_time_fails_the_invocation_for_a_retry(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="many.jsonl", Body="\n".join(good(i) for i in range(600)).encode())
    with pytest.raises(OutOfTime):
        count_tokens.lambda_handler(s3_event("many.jsonl"), LambdaContext(remaining_ms=4_000))


# Each S3 case runs in its own interpreter, so that its peak memory is its own.
_CHILD = textwrap.dedent("""
    import gzip, io, json, sys, time
    from tokenmeter.core import parse_config
    from tokenmeter.metering.metering import Meter
    from tokenmeter.metering.records import DeadLetterBudget
    from tokenmeter.metering.s3_objects import s3_records
    from tokenmeter.metering.tokenizer_pool import TokenizerPool

    class Lines(io.RawIOBase):  # generated as read, never held whole
        def __init__(self, head, line, count, tail=b""):
            self.parts, self.pos = [head, line * count, tail], 0
            self.chunks = iter([head] + [line * 1000] * (count // 1000) + [line * (count % 1000), tail])
            self.buffer = b""
        def readable(self): return True
        def readinto(self, b):
            while len(self.buffer) < len(b):
                try: self.buffer += next(self.chunks)
                except StopIteration: break
            n = min(len(b), len(self.buffer)); b[:n] = self.buffer[:n]; self.buffer = self.buffer[n:]; return n

    def bomb(total):  # gzip members, each a megabyte of one byte: ~1 KB each on disk
        member = gzip.compress(b"a" * (1 << 20))
        return io.BytesIO(member * (total >> 20))

    class S3:
        class exceptions:
            class NoSuchKey(Exception): pass
        def __init__(self, body): self.body = body
        def get_object(self, **_): return {"Body": self.body, "ETag": '"e"'}

    class Count:
        events = 0
        def add_usage(self, usage): Count.events += len(usage.counts)
        def add_dead_letter(self, letter): pass

    case = sys.argv[1]
    good = json.dumps({"id": "chatcmpl-x", "created": 1794744000, "model": "gpt-4o", "user": "s",
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode() + b"\\n"
    key, body = {
        "one 1.5 GB line": ("x.jsonl.gz", bomb(1536 << 20)),
        "a broken first line and 35 MB of records": ("x.jsonl", io.BufferedReader(Lines(b"{\\n", good, 250_000))),
        "a 64 MB JSON array on one line": ("x.json", io.BufferedReader(Lines(b"[", good[:-1] + b",", 600_000, b"1]"))),
        "a 64 MB pretty-printed array": ("x.json", io.BufferedReader(Lines(b"[\\n", b"  " + good[:-1] + b",\\n", 600_000, b"1]"))),
        "a million empty objects in 3 KB of gzip": ("x.jsonl.gz", io.BytesIO(gzip.compress(b"{}\\n" * 1_000_000))),
    }[case]
    config = parse_config({"default_subscription": None})
    budget = DeadLetterBudget(config.max_dead_letters_per_object)
    started = time.monotonic()
    meter = Meter(config, TokenizerPool({}), Count(), budget)
    for item in s3_records(S3(body), "b", key, budget=budget):
        meter.add(item)
    summary = meter.finish()
    # VmHWM: this process's own peak (ru_maxrss would keep the peak of the process it was forked from).
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": time.monotonic() - started, "peak_mb": peak_kb / 1024,
                      "metered": summary.metered, "dead_letters": dict(summary.dead_letters)}))
""")
S3_CASES = {  # what each must come to
    "one 1.5 GB line": {"metered": 0, "dead_letters": {"object_too_large": 1}},  # stopped at 1 GiB, mid-line
    "a broken first line and 35 MB of records": {"metered": 250_000, "dead_letters": {"malformed_json": 1}},
    # Read element by element (json_arrays.py): every record billed; the array's last element, 1, is no record.
    "a 64 MB JSON array on one line": {"metered": 600_000, "dead_letters": {"unknown_format": 1}},
    "a 64 MB pretty-printed array": {"metered": 600_000, "dead_letters": {"unknown_format": 1}},
    "a million empty objects in 3 KB of gzip": {"metered": 0, "dead_letters": {"unknown_format": 1000,
                                                                               "too_many_dead_letters": 1}},
}
LAMBDA_MEMORY_MB = 1024  # count_tokens' memory in template.yaml


@pytest.mark.parametrize("case", list(S3_CASES))
def test_an_s3_object_is_read_within_memory_and_time(case):
    result = subprocess.run([sys.executable, "-c", _CHILD, case], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: found[k] for k in ("metered", "dead_letters")} == S3_CASES[case]
    assert found["peak_mb"] < LAMBDA_MEMORY_MB / 2, found
    assert found["seconds"] < 30, found
