"""One transaction id, one event: however a record reaches count_tokens (CloudWatch and S3 copies, a
re-delivery, two log events with different times, a replay, a backfill), an id is always sent with the
same subscription, code, timestamp and properties. Lago's ClickHouse store counts an id sent with two
timestamps twice, so this is what "billed once" needs on Lago Cloud."""

import json
from collections import defaultdict

from conftest import LambdaContext, cloudwatch_event, drain

from tokenmeter.cli.cli import main

BEDROCK = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-02T10:00:00Z",
           "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "modelId": "meta.llama3-1-8b-instruct-v1:0",
           "input": {"inputTokenCount": 120}, "output": {"outputTokenCount": 30},
           "requestMetadata": {"subscription_id": "acme/eu west"}}
# Anthropic's Messages response carries no time: its delivery's time is the only one it has.
ANTHROPIC = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "model": "claude-3-5-sonnet-20241022",
             "metadata": {"customer": "team.alpha"}, "usage": {"input_tokens": 21, "output_tokens": 393}}
TEXT_ONLY = {"model": "llama3.2:3b", "prompt": "Summarise: the meeting moved.", "completion": "Moved.", "user": "50%off"}


def events(aws) -> list[dict]:
    return [e for body in drain(aws.sqs, aws.usage_url) for e in body["events"]]


def by_id(collected: list[dict]) -> dict[str, set[str]]:
    seen = defaultdict(set)
    for event in collected:
        seen[event["transaction_id"]].add(json.dumps({k: v for k, v in event.items() if k != "transaction_id"},
                                                     sort_keys=True))
    return seen


def test_every_path_sends_an_id_with_one_timestamp(count_tokens, aws, monkeypatch, tmp_path, capsys):
    collected = []
    lines = [json.dumps(BEDROCK), json.dumps(ANTHROPIC), json.dumps(TEXT_ONLY)]
    first = cloudwatch_event(lines, start_ms=1_794_000_000_000, ids=["a1", "a2", "a3"])
    for _ in range(2):  # delivered twice
        count_tokens.lambda_handler(first, LambdaContext())
    collected += events(aws)
    # The same records logged again, in other log events at other times.
    count_tokens.lambda_handler(cloudwatch_event(lines, start_ms=1_794_000_900_000, ids=["b1", "b2", "b3"]),
                                LambdaContext())
    collected += events(aws)
    # And written to S3 (Bedrock writes its invocation logs to both).
    key = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/02/10/log.json"
    aws.s3.put_object(Bucket="inference-logs", Key=key, Body="\n".join(lines).encode())
    count_tokens.lambda_handler({"Records": [{"s3": {"bucket": {"name": "inference-logs"}, "object": {"key": key}}}]},
                                LambdaContext())
    collected += events(aws)
    # A backfill of that object, and a replay of a failed invocation of the first batch.
    assert main(["backfill", "s3://inference-logs/AWSLogs/", "--since", "2026-11-01", "--until", "2026-11-03",
                 "--state", str(tmp_path / "state.json"), "--no-progress"]) == 0
    collected += events(aws)
    failures = aws.sqs.create_queue(QueueName="failures")["QueueUrl"]
    monkeypatch.setenv("INVOCATION_FAILURE_QUEUE_URL", failures)
    aws.sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({
        "requestContext": {"requestId": "r", "condition": "RetriesExhausted"}, "requestPayload": first}))
    assert main(["replay", "failures"]) == 0
    collected += events(aws)

    ids = by_id(collected)
    assert all(len(variants) == 1 for variants in ids.values()), {k: v for k, v in ids.items() if len(v) > 1}
    bedrock = {e["transaction_id"] for e in collected if e["external_subscription_id"] == "acme/eu west"}
    assert len(bedrock) == 2  # input and output: every copy of the Bedrock record is one inference
    assert {e["timestamp"] for e in collected if e["external_subscription_id"] == "acme/eu west"} == {"1793613600.000"}
    # Without a time of their own, the records of the two log events are two sets of events, each consistent.
    anthropic = [e for e in collected if e["external_subscription_id"] == "team.alpha"]
    assert {e["timestamp"] for e in anthropic} >= {"1794000000.001", "1794000900.001"}


def test_a_batch_never_holds_one_id_twice():
    from tokenmeter.core import UsageEvent
    from tokenmeter.shipping.lago_api import chunks_of

    def event(transaction_id, subscription):
        return (None, UsageEvent(transaction_id, subscription, "llm_tokens", "1794744000.000", {"tokens": 1}))

    items = [event(f"t{i}", "a") for i in range(150)] + [event("t3", "b"), event("t3", "c"), event("t149", "b")]
    chunks = chunks_of(items)
    assert [len(c) for c in chunks] == [100, 51, 2]  # the second t3 and t149 wait for a batch without them
    for chunk in chunks:
        ids = [e.transaction_id for _, e in chunk]
        assert len(ids) == len(set(ids))
    assert sorted(e.transaction_id for c in chunks for _, e in c) == sorted(e.transaction_id for _, e in items)


def test_batches_of_distinct_ids_are_the_fetch_in_order_a_hundred_at_a_time():
    from tokenmeter.core import UsageEvent
    from tokenmeter.shipping.lago_api import chunks_of

    items = [(i, UsageEvent(f"t{i}", "a", "llm_tokens", "1794744000.000", {"tokens": 1})) for i in range(250)]
    assert [[position for position, _ in chunk] for chunk in chunks_of(items)] == [
        list(range(0, 100)), list(range(100, 200)), list(range(200, 250))]
    assert chunks_of([]) == []
