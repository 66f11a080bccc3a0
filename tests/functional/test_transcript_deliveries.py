"""Claude Code's transcript tailed into CloudWatch Logs by a log agent: an answer's lines, written as it streams,
straddle the agent's batches, so one answer reaches count_tokens in two or three deliveries (moto's S3 keeps the
stream memory between them). The counts are worked out by hand from the lines."""

import json

from conftest import LambdaContext, cloudwatch_event, drain, snapshots

ANSWER = "msg_01QbxpX1a9Yp4HgyDvXyNq7W"
GROUP = "/claude-code/transcripts"


def deliver(count_tokens, lines: list[dict], start_ms: int) -> dict:
    event = cloudwatch_event([json.dumps(line) for line in lines], start_ms=start_ms, group=GROUP)
    return count_tokens.lambda_handler(event, LambdaContext())


def events_on(aws) -> list[dict]:
    return [event for body in drain(aws.sqs, aws.usage_url) for event in body["events"]]


def totals(events: list[dict]) -> dict[str, int]:
    """Tokens by type over the distinct events (a copy under the same id is dropped by NATS and Lago), having
    checked that a copy is the same event: one id never travels with two times or counts."""
    distinct: dict[str, dict] = {}
    for event in events:
        assert distinct.setdefault(event["transaction_id"], event) == event
    found: dict[str, int] = {}
    for event in distinct.values():
        found[event["properties"]["token_type"]] = found.get(event["properties"]["token_type"], 0) + \
            event["properties"]["tokens"]
    return found


def use_memory(monkeypatch) -> None:
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_dev"}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")


def test_an_answer_straddling_two_deliveries_bills_its_input_and_cache_once(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 1, 159])  # the output so far: 1, 1; the end: 159
    assert deliver(count_tokens, lines[:2], 1_759_312_803_000)["metered"] == 2  # each line a copy of the answer
    first = events_on(aws)
    assert deliver(count_tokens, lines[2:], 1_759_312_808_000)["metered"] == 1
    second = events_on(aws)
    # The second delivery's input and cache events are the first's (the same ids, times and counts); before, they
    # carried the time of the second delivery's first line and billed 10 + 11862 + 15555 tokens a second time.
    assert {e["transaction_id"] for e in second if e["properties"]["token_type"] != "output"} == {
        e["transaction_id"] for e in first if e["properties"]["token_type"] != "output"}
    # The output: the running count the first delivery saw (1) and the whole output from the line ending it (159).
    assert totals(first + second) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 160}
    assert {e["timestamp"] for e in second} == {"1759312802.000", "1759312802.002"}  # first line's, last line's
    assert drain(aws.sqs, aws.dead_url) == []


def test_an_answer_over_three_deliveries_and_a_retried_one_bill_each_token_type_once(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [3, 3, 3, 212])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    # The middle delivery holds neither the answer's first line nor its end: it bills no output (the running count
    # is the first delivery's; a count of its own under the same id would be another event under that id).
    deliver(count_tokens, lines[1:3], 1_759_312_806_000)
    deliver(count_tokens, lines[3:], 1_759_312_809_000)
    deliver(count_tokens, lines[3:], 1_759_312_809_000)  # the last delivery again (Lambda retried it)
    assert totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 3 + 212}


def test_without_a_stream_memory_an_answer_still_bills_every_token_type(count_tokens, aws, monkeypatch):
    # No STREAM_MEMORY_BUCKET: each delivery bills what it holds, under ids of its own (nothing lost).
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_dev"}))
    monkeypatch.delenv("STREAM_MEMORY_BUCKET", raising=False)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 159])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    deliver(count_tokens, lines[1:], 1_759_312_808_000)
    assert totals(events_on(aws)) == {"input": 20, "cache_write": 23724, "cached_input": 31110, "output": 160}


def test_answers_a_delivery_ended_leave_nothing_to_remember(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [9, 159])
    deliver(count_tokens, lines, 1_759_312_803_000)
    assert totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 159}
    assert aws.s3.list_objects_v2(Bucket="inference-logs", Prefix="tokenmeter-streams/").get("KeyCount", 0) == 0


def test_a_memory_object_count_tokens_did_not_write_is_read_as_nothing_kept(count_tokens, aws, monkeypatch):
    # Say an operator's tool wrote over the stream's memory: the answer bills as if nothing were kept (each
    # delivery its part), rather than every later answer of that log stream failing on it.
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 159])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    [kept] = aws.s3.list_objects_v2(Bucket="inference-logs", Prefix="tokenmeter-streams/")["Contents"]
    aws.s3.put_object(Bucket="inference-logs", Key=kept["Key"], Body=b"not json")
    summary = deliver(count_tokens, lines[1:], 1_759_312_808_000)
    assert summary["dead_letters"] == {} and summary["metered"] == 1
    # Input and cache twice (the first time lost with the object), the output once whole beside the running 1.
    assert totals(events_on(aws)) == {"input": 20, "cache_write": 23724, "cached_input": 31110, "output": 160}
