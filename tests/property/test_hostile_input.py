"""Hostile input, property-based: for arbitrary bytes, JSON and field values, nothing escapes the
parsers, decoders and the HTTP endpoint, and every record is accounted for — usage events,
a dead letter with a reason, or a counted skip."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json

from conftest import Collect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmeter.core import UsageEvent, parse_config
from tokenmeter.ingestion.http_api import HttpSettings, handle_request
from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import ReadLimits, RecordError
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import cloudwatch_lines, cloudwatch_records, s3_records, trigger_records
from tokenmeter.nats import PublishOutcome

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
# Field values that formats look at, so that generated records reach deep into the parsers.
hostile = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63), st.floats(),
                    st.text(max_size=30), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
record_shapes = st.fixed_dictionaries({}, optional={
    "schemaType": st.just("ModelInvocationLog") | st.text(max_size=5), "modelId": hostile, "model": hostile,
    "timestamp": hostile, "created": hostile, "created_at": hostile, "requestId": hostile, "id": hostile,
    "input": st.fixed_dictionaries({}, optional={"inputTokenCount": hostile, "cacheReadInputTokenCount": hostile}) | hostile,
    "output": st.fixed_dictionaries({}, optional={"outputTokenCount": hostile}) | hostile,
    "usage": st.fixed_dictionaries({}, optional={"prompt_tokens": hostile, "completion_tokens": hostile,
                                                 "input_tokens": hostile, "output_tokens": hostile,
                                                 "cache_read_input_tokens": hostile,
                                                 "prompt_tokens_details": hostile}) | hostile,
    "done": hostile, "prompt_eval_count": hostile, "eval_count": hostile, "prompt": hostile, "messages": hostile,
    "completion": hostile, "choices": hostile, "response": hostile, "request": hostile,
    "user": hostile, "requestMetadata": hostile, "finishReason": hostile, "totalUsage": hostile,
    "type": hostile | st.sampled_from(["finish", "finish-step", "text-delta", "start", "tool-call", "source", "file",
                                       "assistant", "result", "stream_event", "user", "system"]),
    "session_id": hostile, "message_id": hostile, "parent_tool_use_id": hostile, "subtype": hostile,
    "captureData": hostile | st.fixed_dictionaries({"endpointOutput": st.fixed_dictionaries({
        "data": hostile | st.just('{"model": "m", "usage": {"prompt_tokens": 3}}') | st.just("data: {}"),
        "encoding": hostile | st.sampled_from(["JSON", "BASE64", "CSV"])}) | hostile}),
    "eventMetadata": hostile | st.fixed_dictionaries({}, optional={"eventId": hostile, "inferenceTime": hostile,
                                                                   "customAttributes": hostile}),
    "traceId": st.just("5b8efff798038103d269b633813fc60c") | hostile, "spanId": st.just("b2b2b2b2b2b2b2b2") | hostile,
    "attributes": hostile | st.dictionaries(st.sampled_from(
        ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.model", "gen_ai.operation.name",
         "gen_ai.usage.cache_read_input_tokens", "gen_ai.system", "openinference.span.kind"]), hostile, max_size=5),
    "steps": hostile | st.lists(st.fixed_dictionaries({"usage": st.fixed_dictionaries(
        {}, optional={"inputTokens": hostile, "outputTokens": hostile, "inputTokenDetails": hostile}) | hostile},
        optional={"response": st.fixed_dictionaries({"modelId": hostile}, optional={"id": hostile}) | hostile}),
        max_size=3),
})

VALID = [
    {"schemaType": "ModelInvocationLog", "timestamp": "2026-11-15T12:00:00Z", "modelId": "meta.llama3-1-8b-instruct-v1:0",
     "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "input": {"inputTokenCount": 10, "cacheReadInputTokenCount": 2},
     "output": {"outputTokenCount": 3}, "requestMetadata": {"subscription_id": "sub_1"}},
    {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", "created": 1794744000, "model": "gpt-4o", "user": "sub_2",
     "usage": {"prompt_tokens": 30, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 5}}},
    {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "model": "claude", "user": "sub_3",
     "usage": {"input_tokens": 4, "output_tokens": 2, "cache_read_input_tokens": 1}},
    {"model": "llama3.1:8b", "created_at": "2026-11-15T12:00:00.123456789Z", "done": True, "prompt_eval_count": 5,
     "eval_count": 7, "user": "sub_4"},
    {"model": "llama3.2", "prompt": "Hi", "completion": "Hello", "timestamp": 1794744000, "user": "sub_5"},
]
# Valid records with one or two fields replaced by hostile values: they reach deep into the parsers.
mutated = st.sampled_from(VALID).flatmap(lambda base: st.dictionaries(
    st.sampled_from(sorted(base) + ["usage", "user", "requestMetadata"]), hostile | json_values, max_size=2,
).map(lambda changes: {**base, **changes}))
records = st.one_of(record_shapes, mutated, st.sampled_from(VALID))




def meter_all(items):
    config = parse_config({"default_subscription": None})
    sink = Collect()
    meter = Meter(config, TokenizerPool({}), sink)  # no tokenizer: text-only records must dead-letter, not crash
    for item in items:
        meter.add(item)
    summary = meter.finish()
    assert summary.records == summary.metered + sum(summary.dead_letters.values()) + sum(summary.skipped.values())
    assert len(sink.dead_letters) == sum(summary.dead_letters.values())
    assert all(letter.reason and letter.detail for letter in sink.dead_letters)
    for event in sink.events:
        UsageEvent.from_dict(json.loads(event.to_json()))  # every event keeps the contract, even with odd ids
    return summary


@EXAMPLES
@given(records)
def test_record_parsers_only_ever_bill_or_explain(record):
    try:
        inference = read_inference(record)
    except (RecordError, NothingToBill):
        return
    assert isinstance(inference.model, str) and inference.model
    if inference.counts is not None:
        assert all(type(n) is int and 0 <= n <= 10**9 for n in inference.counts.values())


def cloudwatch(messages: list[str]) -> dict:
    payload = {"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s",
               "logEvents": [{"id": str(i), "timestamp": 1794744000000 + i, "message": m} for i, m in enumerate(messages)]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


@EXAMPLES
@given(st.lists(st.one_of(st.text(max_size=200), records.map(json.dumps), json_values.map(json.dumps)), max_size=8))
def test_cloudwatch_batches_are_all_accounted_for(messages):
    for read in (cloudwatch_lines, cloudwatch_records):  # a batch in one loop (the trigger's way), record by record
        summary = meter_all(read(cloudwatch(messages)))
        # Every line at least one record (a line holding an array, or an AI SDK result's steps, is one per part),
        # and every record one outcome (meter_all).
        assert summary.records >= len(messages)


@EXAMPLES
@given(st.one_of(st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()), st.text(max_size=100),
                 st.binary(max_size=200).map(lambda b: base64.b64encode(gzip.compress(b)).decode())))
def test_undecodable_cloudwatch_payloads_become_one_dead_letter(data):
    summary = meter_all(cloudwatch_records({"awslogs": {"data": data}}))
    assert summary.records <= 1 or summary.metered == 0


class FakeS3:
    class exceptions:  # noqa: N801 - boto3's naming
        class NoSuchKey(Exception):
            pass

    def __init__(self, body: bytes):
        self.body = body

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's naming
        return {"Body": io.BytesIO(self.body), "ETag": '"e"'}


@EXAMPLES
@given(st.one_of(st.binary(max_size=400),
                 st.lists(records.map(json.dumps), max_size=5).map(lambda lines: "\n".join(lines).encode()),
                 json_values.map(lambda v: json.dumps(v, indent=1).encode()),
                 # A log group exported to S3 ("<time> <message>"), prefixes that only look like a time.
                 st.lists(st.tuples(st.sampled_from(["2026-11-15T12:00:00.000Z ", "2026-11-15T12:00:00Z ",
                                                     "9999-99-99T99:99:99Z ", "x ", "2026-11-15T12:00:00.000Z\t"]),
                                    records.map(json.dumps) | st.text(max_size=40)
                                    | records.map(lambda r: json.dumps(r, indent=1))  # one message, several lines
                                    | st.sampled_from(["START RequestId: 1 Version: $LATEST", "REPORT RequestId: 1"])),
                          max_size=5).map(lambda lines: "\n".join(p + m for p, m in lines).encode())),
       st.booleans())
def test_s3_objects_of_any_content_are_all_accounted_for(body, gzipped):
    key = "logs/x.jsonl.gz" if gzipped else "logs/x.jsonl"
    meter_all(s3_records(FakeS3(gzip.compress(body) if gzipped else body), "bucket", key))



def _csv(rows: list[list], quoting: int) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


csv_fields = st.one_of(st.text(alphabet='a,"\n\r é{}[]1-', max_size=12), records.map(json.dumps), hostile.map(str))


@EXAMPLES
@given(st.lists(st.lists(csv_fields, min_size=1, max_size=4), max_size=5),
       st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]), st.binary(max_size=40), st.booleans())
def test_csv_objects_of_any_rows_are_all_accounted_for(rows, quoting, tail, gzipped):
    # Rows of any width under a header (some the header's, some not), records' JSON as fields, a garbled end.
    body = _csv([["id", "type", "usage_details", "model"], *rows], quoting) + tail
    key = "exports/part.csv.gz" if gzipped else "exports/part.csv"
    meter_all(s3_records(FakeS3(gzip.compress(body) if gzipped else body), "bucket", key))


@EXAMPLES
@given(st.lists(records | json_values, max_size=8), st.integers(0, 2000), st.binary(max_size=8), st.booleans())
def test_json_arrays_past_the_read_limits_are_all_accounted_for(values, cut, garbage, indent):
    # Read element by element (json_arrays.py): cut anywhere, something not JSON put in anywhere.
    body = json.dumps(values, indent=1 if indent else None).encode()
    body = body[:cut] + garbage + body[cut:] if garbage else body[:cut] if cut < len(body) else body
    limits = ReadLimits(max_record_bytes=64, max_document_bytes=64)
    meter_all(s3_records(FakeS3(b" [" + body[1:] if body[:1] == b"[" else body), "bucket", "x.json", limits))


@EXAMPLES
@given(st.sampled_from([b"\x28\xb5\x2f\xfd", b"\xff\x06\x00\x00sNaPpY", b"PK\x03\x04",
                         b"\x00\x00\x01\x00\x00\x00\x00\x20\x80\x02", b"BZh91AY&SY", b"\xfd7zXZ\x00",
                         b"\xff\xfe", b"\xfe\xff"]),
       st.binary(max_size=300))
def test_objects_that_only_begin_as_a_compressed_format_are_all_accounted_for(magic, rest):
    # zstd, Snappy's framing, ZIP, Hadoop's Snappy blocks, bzip2, xz and UTF-16's byte order marks, then anything.
    meter_all(s3_records(FakeS3(magic + rest), "bucket", "firehose/part"))

envelopes = st.fixed_dictionaries(
    {"messageType": st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE"]) | hostile,
     "logEvents": st.lists(st.fixed_dictionaries({}, optional={
         "id": st.sampled_from(["1", "2"]) | hostile, "timestamp": hostile,
         "message": records.map(json.dumps) | st.text(max_size=40) | hostile}), max_size=3) | hostile},
    optional={"logGroup": hostile, "logStream": hostile})


@EXAMPLES
@given(st.lists(st.one_of(records, envelopes), min_size=1, max_size=5), st.sampled_from([b"", b" ", b"\n"]),
       st.sampled_from(["plain", "gzip", "members"]))
def test_objects_of_records_or_payloads_back_to_back_are_all_accounted_for(values, between, packing):
    # As Firehose writes them (payloads of a log group's subscription, or records with no delimiter), each
    # value gzipped on its own where it writes gzip members one after another.
    parts = [json.dumps(value, separators=(",", ":")).encode() for value in values]
    if packing == "members":
        body = b"".join(gzip.compress(part) for part in parts)
    else:
        body = between.join(parts)
        body = gzip.compress(body) if packing == "gzip" else body
    event = {"Records": [{"s3": {"bucket": {"name": "bucket"}, "object": {"key": "archive/part-1"}}}]}
    meter_all(trigger_records(event, lambda: FakeS3(body)))


@EXAMPLES
@given(st.lists(st.one_of(st.binary(max_size=100), records.map(lambda r: json.dumps(r).encode()),
                          envelopes.map(lambda e: gzip.compress(json.dumps(e).encode())),
                          st.text(max_size=20).map(str.encode)),
                min_size=1, max_size=4), st.integers(0, 3))
def test_kinesis_batches_are_all_accounted_for(datas, broken):
    records = [{"eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{n}",
                "kinesis": {"data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1794744000.5}}
               for n, data in enumerate(datas)]
    if broken < len(records):
        records[broken]["kinesis"]["data"] = "not base64!"
    meter_all(trigger_records({"Records": records}, lambda: None))


def stored(events):
    return [PublishOutcome(e.transaction_id, "stored") for e in events]


@EXAMPLES
@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                 st.lists(json_values, max_size=4).map(lambda v: json.dumps({"events": v}))),
       st.booleans())
def test_http_endpoint_answers_every_body_with_a_status(body, as_base64):
    event = {"requestContext": {"http": {"method": "POST"}}, "headers": {},
             "body": base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if as_base64 else body,
             "isBase64Encoded": as_base64}
    reply, outcomes = handle_request(event, HttpSettings(max_events=3, max_body_bytes=2000), stored)
    assert reply.status in (202, 400, 413)
    assert json.loads(json.dumps(reply.body))
    assert (reply.status == 202) == bool(outcomes)
