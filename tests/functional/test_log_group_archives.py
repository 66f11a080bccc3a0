"""S3 objects as AWS writes a log group into them: archived through a Firehose subscription (the CloudWatch
Logs payloads, each gzipped by CloudWatch, written one after another with no delimiter and no file suffix),
records put back to back on one line (Firehose's message extraction without a newline delimiter), and
CloudWatch Logs' export task ("<ISO time> <message>" per line). Expected totals are the records' own counts,
added by hand."""

import base64
import gzip
import io
import json

from conftest import LambdaContext, cloudwatch_event, drain, events_on, s3_event
from test_count_tokens_handler import BEDROCK, OLLAMA

from tokenmeter.metering.s3_objects import s3_records

LINES = [json.dumps(BEDROCK),
         "2024-11-26T18:41:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t" + json.dumps(OLLAMA),
         "START RequestId: 8f1e2d3c-aaaa-bbbb-cccc-1234567890ab Version: $LATEST"]
IDS = ["36783712347654321098765432109876543210987654321012345670", "36783712347654321098765432109876543210987654321012345671",
       "36783712347654321098765432109876543210987654321012345672"]
# What CloudWatch sends a destination first, and now and then: not log events.
CONTROL = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
           "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1732646400000,
                                                     "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}
# Firehose names its objects <prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>, with no suffix.
KEY = "archive/2024/11/26/18/tokenmeter-logs-1-2024-11-26-18-45-00-1b7e3a52-7d43-4c1f-9c0e-5a1e2f3d4c5b"


def payload(lines: list[str], ids: list[str]) -> dict:
    """The payload CloudWatch Logs sends a subscription's destination (tests/conftest.cloudwatch_event's, decoded)."""
    event = cloudwatch_event(lines, ids=ids)
    return json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))


def by_type(events) -> dict:
    totals = {}
    for e in events:
        key = (e["external_subscription_id"], e["properties"]["token_type"])
        totals[key] = totals.get(key, 0) + e["properties"]["tokens"]
    return totals


def test_a_log_group_archived_through_firehose_bills_as_its_subscription_does(count_tokens, aws):
    # Two deliveries of the log group (one line, then two), as two gzip members after a control message.
    parts = [CONTROL, payload(LINES[:1], IDS[:1]), payload(LINES[1:], IDS[1:])]
    aws.s3.put_object(Bucket="inference-logs", Key=KEY, Body=b"".join(gzip.compress(json.dumps(p).encode())
                                                                      for p in parts))
    summary = count_tokens.lambda_handler(s3_event(KEY), LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"], summary["skipped"]) == (
        3, 2, {}, {"platform_line": 1})
    archived = events_on(aws)
    assert by_type(archived) == {("sub_acme", "input"): 100, ("sub_acme", "cached_input"): 40,
                                 ("sub_acme", "output"): 20, ("sub_globex", "input"): 26, ("sub_globex", "output"): 290}
    # The same log events through the subscription itself: the very same events, so a log group both
    # subscribed and archived bills each inference once.
    count_tokens.lambda_handler(cloudwatch_event(LINES, ids=IDS), LambdaContext())
    subscribed = events_on(aws)
    assert sorted(map(json.dumps, subscribed)) == sorted(map(json.dumps, archived))
    assert drain(aws.sqs, aws.dead_url) == []


class _Trickle:
    """An S3 body that hands out at most ``size`` bytes a read, so that every boundary falls across reads."""

    def __init__(self, data: bytes, size: int):
        self._data, self._size = io.BytesIO(data), size

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(self._size, size) if size >= 0 else self._size)

    def close(self) -> None:
        pass


class _OneObject:
    class exceptions:  # noqa: N801 - boto3's shape
        NoSuchKey = KeyError

    def __init__(self, data: bytes, size: int):
        self._data, self._size = data, size

    def get_object(self, **_):
        return {"Body": _Trickle(self._data, self._size), "ETag": '"e"'}


def test_payloads_back_to_back_are_split_wherever_the_reads_fall():
    # Plain (Firehose with CloudWatch's decompression on but no message extraction): 30 payloads, 2 log events each.
    payloads = [payload([json.dumps({**OLLAMA, "eval_count": n}), json.dumps({**OLLAMA, "eval_count": n + 1})],
                        [f"3{n:055d}", f"3{n + 1:055d}"]) for n in range(0, 60, 2)]
    data = b"".join(json.dumps(p, separators=(",", ":")).encode() for p in payloads)
    members = b"".join(gzip.compress(json.dumps(p, separators=(",", ":")).encode()) for p in payloads)  # as archived
    for body in (data, members):
        for size in (1, 7, 15, 16, 4096):
            items = list(s3_records(_OneObject(body, size), "b", "k"))
            assert [item.value["logEvents"] for item in items] == [p["logEvents"] for p in payloads], size


def test_records_back_to_back_on_one_line_are_each_a_record(count_tokens, aws):
    records = [{**OLLAMA, "eval_count": n, "created_at": f"2024-11-26T18:41:0{n}Z"} for n in (1, 2, 3)]
    body = (json.dumps(records[0]) + json.dumps(records[1]) + " " + json.dumps(records[2]) + "\n").encode()
    aws.s3.put_object(Bucket="inference-logs", Key="extracted/2024/11/26/18/part-1", Body=body)
    summary = count_tokens.lambda_handler(s3_event("extracted/2024/11/26/18/part-1"), LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"]) == (3, 3, {})
    events = events_on(aws)
    assert by_type(events) == {("sub_globex", "input"): 3 * 26, ("sub_globex", "output"): 1 + 2 + 3}
    assert len({e["transaction_id"] for e in events}) == 6
    count_tokens.lambda_handler(s3_event("extracted/2024/11/26/18/part-1"), LambdaContext())  # delivered again
    assert sorted(e["transaction_id"] for e in events_on(aws)) == sorted(e["transaction_id"] for e in events)


def test_gzip_is_told_by_its_bytes_not_its_name(count_tokens, aws):
    line = (json.dumps(OLLAMA) + "\n").encode()
    aws.s3.put_object(Bucket="inference-logs", Key="named-plain.jsonl", Body=gzip.compress(line))
    aws.s3.put_object(Bucket="inference-logs", Key="named-gzip.jsonl.gz", Body=line)
    summary = count_tokens.lambda_handler(s3_event("named-plain.jsonl", "named-gzip.jsonl.gz"), LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"]) == (2, 2, {})


def test_a_log_group_exported_to_s3_is_read_line_by_line_at_each_lines_time(count_tokens, aws):
    # CreateExportTask writes <prefix>/<task id>/<log stream>/000000.gz, each line "<event time> <message>".
    no_time = {"id": "chatcmpl-9xQmT3vBcN7pLk2JhG5dR8sWf", "object": "chat.completion", "model": "gpt-4o",
               "user": "sub_initech", "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}}
    lines = ["2024-11-26T18:40:00.000Z " + LINES[0], "2024-11-26T18:41:00.000Z " + LINES[1],
             "2024-11-26T18:41:00.010Z " + LINES[2], "2024-11-26T18:41:00.123Z " + json.dumps(no_time),
             "2024-11-26T18:41:01.000Z END RequestId: 8f1e2d3c-aaaa-bbbb-cccc-1234567890ab"]
    key = "exportedlogs/0f2c7a1e-5b3d-4e6f-8a9b-1c2d3e4f5a6b/2024/11/26/[$LATEST]5d6c4b3a2f1e/000000.gz"
    aws.s3.put_object(Bucket="inference-logs", Key=key, Body=gzip.compress("\n".join(lines).encode()))
    summary = count_tokens.lambda_handler(s3_event(key), LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"], summary["skipped"]) == (
        5, 3, {}, {"platform_line": 2})
    events = events_on(aws)
    assert by_type(events) == {("sub_acme", "input"): 100, ("sub_acme", "cached_input"): 40,
                               ("sub_acme", "output"): 20, ("sub_globex", "input"): 26, ("sub_globex", "output"): 290,
                               ("sub_initech", "input"): 50, ("sub_initech", "output"): 5}
    # The completion logs no time of its own: it is billed at its line's, 2024-11-26T18:41:00.123Z.
    assert {e["timestamp"] for e in events if e["external_subscription_id"] == "sub_initech"} == {"1732646460.123"}


def test_an_exported_message_over_several_lines_is_one_record(count_tokens, aws):
    # A Node.js function's console.log(response) in the text log format is one log event over several lines;
    # exported, only its first line begins with the event's time.
    printed = ("{\n  id: 'chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS',\n  object: 'chat.completion',\n"
               "  model: 'gpt-4o-mini-2024-07-18',\n  choices: [ [Object] ],\n"
               "  usage: {\n    prompt_tokens: 1200,\n    completion_tokens: 300,\n    total_tokens: 1500,\n"
               "    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 }\n  },\n  user: 'sub_acme'\n}")
    lines = ["2024-11-26T18:40:00.123Z 2024-11-26T18:40:00.123Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t"
             + printed, "2024-11-26T18:41:00.000Z " + LINES[1]]
    key = "exportedlogs/0f2c7a1e-5b3d-4e6f-8a9b-1c2d3e4f5a6b/2024/11/26/[$LATEST]5d6c4b3a2f1e/000001.gz"
    aws.s3.put_object(Bucket="inference-logs", Key=key, Body=gzip.compress("\n".join(lines).encode()))
    summary = count_tokens.lambda_handler(s3_event(key), LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"]) == (2, 2, {})
    # 1,200 prompt tokens, 1,024 of them cached; 300 completion tokens. The second line: its own counts.
    assert by_type(events_on(aws)) == {("sub_acme", "input"): 176, ("sub_acme", "cached_input"): 1024,
                                       ("sub_acme", "output"): 300, ("sub_globex", "input"): 26,
                                       ("sub_globex", "output"): 290}
