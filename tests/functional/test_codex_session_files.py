"""Codex CLI's session files through count_tokens: tailed into CloudWatch Logs by a log agent, whose batches split
the session between deliveries (moto's S3 keeps the stream memory between them), and synced to S3 as they grow.
The counts are worked out by hand from the lines (tests/unit/test_codex_sessions.py)."""

import json

import pytest
from conftest import LambdaContext, cloudwatch_event, codex_rollout, drain, event_totals, events_on, s3_event

GROUP = "/codex/sessions"
KEY = "codex/sessions/2025/10/05/rollout-2025-10-05T14-21-07-0199b4f2-6c1e-7a40-9d3b-2f5e8c1a7b90.jsonl"
TOTALS = {"input": (8213 - 3072) + (8889 - 8064), "cached_input": 3072 + 8064, "output": (412 - 256) + (126 - 64),
          "reasoning": 256 + 64}


def use_memory(monkeypatch) -> None:
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_dev"}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")


def deliver(count_tokens, lines: list[dict], start_ms: int) -> dict:
    event = cloudwatch_event([json.dumps(line) for line in lines], start_ms=start_ms, group=GROUP)
    return count_tokens.lambda_handler(event, LambdaContext())


def test_a_session_split_between_deliveries_bills_each_response_once(count_tokens, aws, monkeypatch):
    use_memory(monkeypatch)
    lines = codex_rollout()
    # The first delivery ends after the first response's token_count; the second begins with the output of the tool
    # it called, and the same token_count again (Codex repeats it when the next request's rate limits come).
    first = deliver(count_tokens, lines[:7], 1_759_674_081_000)
    second = deliver(count_tokens, lines[7:], 1_759_674_099_000)
    assert first["metered"] == 1 and second["metered"] == 1 and second["skipped"] == {"repeated_count": 1, "no_usage": 2}
    assert event_totals(events_on(aws)) == TOTALS
    assert drain(aws.sqs, aws.dead_url) == []


@pytest.mark.parametrize("memory", [True, False])
def test_a_session_file_synced_again_as_it_grows_bills_each_response_once(count_tokens, aws, monkeypatch, memory):
    use_memory(monkeypatch)
    if not memory:
        monkeypatch.delenv("STREAM_MEMORY_BUCKET")
    lines = codex_rollout()
    for synced in (lines[:8], lines):
        aws.s3.put_object(Bucket="inference-logs", Key=KEY, Body="\n".join(json.dumps(line) for line in synced).encode())
        summary = count_tokens.lambda_handler(s3_event(KEY), LambdaContext())
    events = events_on(aws)
    assert event_totals(events) == TOTALS
    # With the memory, the second sync knows the first response billed; without, it sends its events again, the same
    # events (same ids and times), dropped downstream as copies.
    assert summary["skipped"]["repeated_count"] == (2 if memory else 1)
    assert len(events) == (4 + 4 if memory else 4 + 8)


def test_without_a_stream_memory_a_split_sessions_later_responses_are_dead_letters_not_lost(count_tokens, aws,
                                                                                            monkeypatch):
    # The model is in the first delivery's turn_context: the second delivery cannot name it, and says so.
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_dev"}))
    monkeypatch.delenv("STREAM_MEMORY_BUCKET", raising=False)
    lines = codex_rollout()
    deliver(count_tokens, lines[:7], 1_759_674_081_000)
    second = deliver(count_tokens, lines[7:], 1_759_674_099_000)
    assert second["dead_letters"] == {"invalid_record": 2}
    letters = [json.loads(body["record"]) for body in drain(aws.sqs, aws.dead_url)]
    assert [letter["payload"]["info"]["last_token_usage"]["input_tokens"] for letter in letters] == [8213, 8889]
