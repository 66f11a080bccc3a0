"""Claude Code's transcript tailed into CloudWatch Logs by a log agent: an answer's lines, written as it streams,
straddle the agent's batches, so one answer reaches count_tokens in two or three deliveries (moto's S3 keeps the
stream memory between them). The counts are worked out by hand from the lines."""

import json

import pytest
from conftest import LambdaContext, cloudwatch_event, drain, event_totals, events_on, s3_event, snapshots

ANSWER = "msg_01QbxpX1a9Yp4HgyDvXyNq7W"
GROUP = "/claude-code/transcripts"


def deliver(count_tokens, lines: list[dict], start_ms: int) -> dict:
    event = cloudwatch_event([json.dumps(line) for line in lines], start_ms=start_ms, group=GROUP)
    return count_tokens.lambda_handler(event, LambdaContext())


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
    # The output: the running count the first delivery saw (1), and what the line ending it adds (159 - 1); before,
    # the whole 159 beside the 1.
    assert [(e["properties"]["tokens"], e["timestamp"]) for e in second if e["properties"]["token_type"] == "output"
            ] == [(158, "1759312802.002")]  # at the last line's time
    assert event_totals(first + second) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 159}
    assert {e["timestamp"] for e in second} == {"1759312802.000", "1759312802.002"}  # first line's, last line's
    assert drain(aws.sqs, aws.dead_url) == []


def test_a_running_count_claude_code_never_ends_bills_its_largest_value_over_deliveries(count_tokens, aws,
                                                                                         monkeypatch):
    # Claude Code leaves every line's stop reason null (claude-code#27361): the output is the largest running count.
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [8, 8, 8, 8, 310], ended=False)
    deliver(count_tokens, lines[:3], 1_759_312_803_000)
    deliver(count_tokens, lines[3:], 1_759_312_806_000)
    deliver(count_tokens, lines[3:], 1_759_312_806_000)  # the second delivery again, once it was delivered
    events = events_on(aws)
    # 8 from the first delivery, 310 - 8 from the second, nothing from it again; before, 8 alone was billed.
    assert sorted(e["properties"]["tokens"] for e in events if e["properties"]["token_type"] == "output") == [8, 302]
    assert event_totals(events) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 310}


def test_an_answer_over_three_deliveries_and_a_retried_one_bill_each_token_type_once(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [3, 3, 3, 212])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    # The middle delivery holds neither the answer's first line nor its end, nor a larger running count: it bills no
    # output.
    deliver(count_tokens, lines[1:3], 1_759_312_806_000)
    deliver(count_tokens, lines[3:], 1_759_312_809_000)
    deliver(count_tokens, lines[3:], 1_759_312_809_000)  # the last delivery again (Lambda retried it)
    assert event_totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 212}


def test_without_a_stream_memory_an_answer_still_bills_every_token_type(count_tokens, aws, monkeypatch):
    # No STREAM_MEMORY_BUCKET: each delivery bills what it holds, under ids of its own (nothing lost).
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_dev"}))
    monkeypatch.delenv("STREAM_MEMORY_BUCKET", raising=False)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 159])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    deliver(count_tokens, lines[1:], 1_759_312_808_000)
    assert event_totals(events_on(aws)) == {"input": 20, "cache_write": 23724, "cached_input": 31110, "output": 160}


def test_answers_a_delivery_ended_leave_nothing_to_remember(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [9, 159])
    deliver(count_tokens, lines, 1_759_312_803_000)
    assert event_totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 159}
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
    assert event_totals(events_on(aws)) == {"input": 20, "cache_write": 23724, "cached_input": 31110, "output": 160}


@pytest.mark.parametrize("memory", [True, False])
def test_a_transcript_synced_to_s3_mid_answer_and_again_once_it_ended_bills_the_whole_output_once(count_tokens, aws,
                                                                                                  monkeypatch, memory):
    # The same object written again as the session grows (a sync of ~/.claude/projects): the first caught the
    # answer's first two lines, the second holds it whole. With a stream memory (kept by object) the second sync
    # starts from what the first billed; without, from the lines before, which it holds: the same events.
    use_memory(monkeypatch)
    if not memory:
        monkeypatch.delenv("STREAM_MEMORY_BUCKET")
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 1, 159])
    key = "claude/projects/work/8f2a6c1e-3b4d-4e5f-9a0b-1c2d3e4f5a6b.jsonl"
    for synced in (lines[:2], lines):
        aws.s3.put_object(Bucket="inference-logs", Key=key, Body="\n".join(json.dumps(line) for line in synced).encode())
        count_tokens.lambda_handler(s3_event(key), LambdaContext())
    assert event_totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 159}


def test_a_memory_kept_by_the_release_before_bills_the_output_from_the_ending_line(count_tokens, aws, monkeypatch):
    # That release kept only the first lines' times: what its delivery billed of the running count is unknown, so
    # the ending line bills its whole output (the answers straddling an upgrade bill as that release billed them).
    use_memory(monkeypatch)
    lines = snapshots(ANSWER, "2025-10-01T10:00:02.000Z", [1, 159])
    deliver(count_tokens, lines[:1], 1_759_312_803_000)
    [kept] = aws.s3.list_objects_v2(Bucket="inference-logs", Prefix="tokenmeter-streams/")["Contents"]
    held = json.loads(aws.s3.get_object(Bucket="inference-logs", Key=kept["Key"])["Body"].read())
    assert set(held) == {"firsts", "outputs"}
    aws.s3.put_object(Bucket="inference-logs", Key=kept["Key"], Body=json.dumps({"firsts": held["firsts"]}).encode())
    deliver(count_tokens, lines[1:], 1_759_312_808_000)
    assert event_totals(events_on(aws)) == {"input": 10, "cache_write": 11862, "cached_input": 15555, "output": 160}
