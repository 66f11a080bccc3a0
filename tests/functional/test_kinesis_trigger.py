"""count_tokens triggered by a Kinesis Data Streams batch (a log group's subscription to a stream, or records an
app puts there itself), against moto: the same events as the subscription delivered straight to the function."""

import base64
import gzip
import json

from conftest import LambdaContext, cloudwatch_event, drain, events_on
from test_count_tokens_handler import BEDROCK, OLLAMA
from test_log_group_archives import IDS, LINES, by_type

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/inference-logs"


def kinesis_event(*datas: bytes) -> dict:
    """Lambda's Kinesis event (its documented shape), one record per data blob, on shard 0."""
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": f"4959033827149025660855969253836157109592157598913658{n:04d}",
                    "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1732646470.25},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:4959033827149025660855969253836157109592157598913658{n:04d}",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/count-tokens",
        "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN} for n, data in enumerate(datas)]}


def test_a_log_groups_subscription_through_kinesis_bills_as_it_does_straight(count_tokens, aws):
    subscribed = cloudwatch_event(LINES, ids=IDS)  # the payload CloudWatch puts on the stream: the same bytes
    summary = count_tokens.lambda_handler(kinesis_event(base64.b64decode(subscribed["awslogs"]["data"])),
                                          LambdaContext())
    assert (summary["records"], summary["metered"], summary["skipped"]) == (3, 2, {"platform_line": 1})
    through_kinesis = events_on(aws)
    count_tokens.lambda_handler(subscribed, LambdaContext())
    assert sorted(map(json.dumps, events_on(aws))) == sorted(map(json.dumps, through_kinesis))


def test_records_an_app_puts_on_the_stream_are_each_a_record(count_tokens, aws):
    no_time = {"id": "chatcmpl-9xQmT3vBcN7pLk2JhG5dR8sWf", "object": "chat.completion", "model": "gpt-4o",
               "user": "sub_initech", "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}}
    event = kinesis_event(json.dumps(BEDROCK).encode(), gzip.compress(json.dumps(OLLAMA).encode()),
                          json.dumps(no_time).encode(), b"not json at all")
    summary = count_tokens.lambda_handler(event, LambdaContext())
    assert (summary["records"], summary["metered"], summary["dead_letters"]) == (4, 3, {"malformed_json": 1})
    events = events_on(aws)
    assert by_type(events) == {("sub_acme", "input"): 100, ("sub_acme", "cached_input"): 40,
                               ("sub_acme", "output"): 20, ("sub_globex", "input"): 26, ("sub_globex", "output"): 290,
                               ("sub_initech", "input"): 50, ("sub_initech", "output"): 5}
    # A record with no time of its own takes its arrival on the stream, 1732646470.25 s.
    assert {e["timestamp"] for e in events if e["external_subscription_id"] == "sub_initech"} == {"1732646470.250"}
    [letter] = drain(aws.sqs, aws.dead_url)
    assert letter["source"] == event["Records"][3]["eventID"].join(["kinesis:", ""])
    count_tokens.lambda_handler(event, LambdaContext())  # the batch retried: the same ids
    assert sorted(e["transaction_id"] for e in events_on(aws)) == sorted(e["transaction_id"] for e in events)


def test_a_record_that_does_not_decode_is_one_dead_letter(count_tokens, aws):
    event = kinesis_event(b"")
    event["Records"][0]["kinesis"]["data"] = "%%% not base64"
    summary = count_tokens.lambda_handler(event, LambdaContext())
    assert (summary["records"], summary["dead_letters"]) == (1, {"decode_error": 1})
