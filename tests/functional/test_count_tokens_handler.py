"""count_tokens end to end against moto: triggers in, SQS messages out."""

import gzip
import json
import os

import pytest
from conftest import LambdaContext, cloudwatch_event, drain, events_on, s3_event

from tokenmeter.core import MeteringConfigError

BEDROCK = {
    "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2024-11-26T18:40:00Z",
    "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "operation": "Converse",
    "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
    "input": {"inputTokenCount": 100, "cacheReadInputTokenCount": 40}, "output": {"outputTokenCount": 20},
    "requestMetadata": {"subscription_id": "sub_acme"},
}
OLLAMA = {"model": "llama3.1:8b", "created_at": "2024-11-26T18:41:00Z", "done": True, "prompt_eval_count": 26,
          "eval_count": 290, "metadata": {"customer": "sub_globex"}}
TEXT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "Hi"}], "completion": "Hello!",
        "timestamp": 1732646500, "user": "sub_initech"}


def test_cloudwatch_batch_becomes_events_and_dead_letters(count_tokens, aws, tiktoken_llama3):
    lines = [
        json.dumps(BEDROCK),
        "2024-11-26T18:41:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t" + json.dumps(OLLAMA),
        json.dumps(TEXT),
        "START RequestId: 8f1e2d3c-aaaa-bbbb-cccc-1234567890ab Version: $LATEST",
        '{"model": "gpt-4o", "usage": {"prompt_tokens": "many"}, "user": "sub_x"}',
        '{"truncated": ',
    ]
    summary = count_tokens.lambda_handler(cloudwatch_event(lines), LambdaContext())
    assert summary == {"records": 6, "metered": 3, "events": 7,
                       "dead_letters": {"invalid_counts": 1, "malformed_json": 1}, "skipped": {"platform_line": 1}}
    totals = {(e["external_subscription_id"], e["properties"]["token_type"]): e["properties"]["tokens"] for e in events_on(aws)}
    # The chat as Llama 3 saw it: BOS, user header (4), "Hi", eot, assistant header (4).
    chat_input = 1 + 4 + len(tiktoken_llama3.encode("Hi")) + 1 + 4
    assert totals == {
        ("sub_acme", "input"): 100, ("sub_acme", "cached_input"): 40, ("sub_acme", "output"): 20,
        ("sub_globex", "input"): 26, ("sub_globex", "output"): 290,
        ("sub_initech", "input"): chat_input, ("sub_initech", "output"): len(tiktoken_llama3.encode("Hello!")),
    }
    letters = drain(aws.sqs, aws.dead_url)
    assert sorted(d["reason"] for d in letters) == ["invalid_counts", "malformed_json"]
    for letter in letters:
        assert letter["source"].startswith("cloudwatch:/aws/bedrock/invocations:stream-1:")
        assert letter["record"] and letter["detail"]


def test_redelivered_trigger_gives_the_same_ids(count_tokens, aws):
    event = cloudwatch_event([json.dumps(BEDROCK), json.dumps(OLLAMA)])
    count_tokens.lambda_handler(event, LambdaContext())
    first = events_on(aws)
    count_tokens.lambda_handler(event, LambdaContext())
    assert events_on(aws) == first


def test_prompt_only_records_are_counted_with_an_instruct_tokenizer(count_tokens, aws, tiktoken_llama3):
    # A batch holding no chat at all, for a model whose tokenizer has a chat template (found by the
    # end-to-end test: transformers took the empty chat batch for one empty conversation).
    prompts = ["Summarise: the meeting moved to Thursday.", "Translate to French: good morning"]
    lines = [json.dumps({"id": f"gen-{i}", "model": "llama3.2:3b", "prompt": p, "completion": "Done.",
                         "timestamp": 1732646500, "user": "sub_initech"}) for i, p in enumerate(prompts)]
    summary = count_tokens.lambda_handler(cloudwatch_event(lines), LambdaContext())
    assert summary["dead_letters"] == {} and summary["metered"] == 2
    inputs = sorted(e["properties"]["tokens"] for e in events_on(aws) if e["properties"]["token_type"] == "input")
    assert inputs == sorted(1 + len(tiktoken_llama3.encode(p)) for p in prompts)


def test_control_message_is_skipped(count_tokens, aws):
    event = cloudwatch_event(["CWL CONTROL MESSAGE: Checking health of destination"], message_type="CONTROL_MESSAGE")
    assert count_tokens.lambda_handler(event, LambdaContext())["records"] == 0
    assert drain(aws.sqs, aws.dead_url) == []


@pytest.mark.parametrize(
    "data",
    ["%%% not base64 %%%", "aGVsbG8gd29ybGQ=", gzip.compress(b"not json").hex(), None],
    ids=["corrupt-base64", "not-gzip", "not-json", "missing"],
)
def test_undecodable_cloudwatch_payload_is_one_dead_letter(count_tokens, aws, data):
    summary = count_tokens.lambda_handler({"awslogs": {"data": data}}, LambdaContext())
    assert summary["dead_letters"] == {"decode_error": 1}
    assert [d["reason"] for d in drain(aws.sqs, aws.dead_url)] == ["decode_error"]


def test_unknown_trigger_is_dead_lettered(count_tokens, aws):
    summary = count_tokens.lambda_handler({"detail-type": "Scheduled Event"}, LambdaContext())
    assert summary["dead_letters"] == {"unknown_trigger": 1}


def test_s3_objects_in_every_layout(count_tokens, aws):
    jsonl = "\n".join(json.dumps({**OLLAMA, "eval_count": n}) for n in (1, 2, 3)).encode()
    aws.s3.put_object(Bucket="inference-logs", Key="logs/a.jsonl", Body=jsonl + b"\n\n")
    aws.s3.put_object(Bucket="inference-logs", Key="logs/b.jsonl.gz", Body=gzip.compress(jsonl))
    aws.s3.put_object(Bucket="inference-logs", Key="logs/c.json", Body=json.dumps(BEDROCK, indent=2).encode())
    array = json.dumps([{**OLLAMA, "eval_count": 10}, {**OLLAMA, "eval_count": 20}], indent=1)
    aws.s3.put_object(Bucket="inference-logs", Key="logs/d e.json.gz", Body=gzip.compress(array.encode()))
    summary = count_tokens.lambda_handler(
        s3_event("logs/a.jsonl", "logs/b.jsonl.gz", "logs/c.json", "logs/d+e.json.gz"), LambdaContext()
    )
    assert summary["metered"] == 3 + 3 + 1 + 2 and summary["dead_letters"] == {}
    outputs = sorted(e["properties"]["tokens"] for e in events_on(aws) if e["properties"]["token_type"] == "output")
    assert outputs == sorted([1, 2, 3, 1, 2, 3, 20, 10, 20])


def test_s3_line_identity_is_stable_and_distinct(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="x.jsonl", Body=(json.dumps(OLLAMA) + "\n") * 2)
    count_tokens.lambda_handler(s3_event("x.jsonl"), LambdaContext())
    first = [e["transaction_id"] for e in events_on(aws)]
    count_tokens.lambda_handler(s3_event("x.jsonl"), LambdaContext())
    assert [e["transaction_id"] for e in events_on(aws)] == first and len(set(first)) == 4


def test_a_batch_api_results_file_bills_each_succeeded_request_once(count_tokens, aws, monkeypatch):
    config = json.loads(os.environ["METERING_CONFIG"])
    rule = {"path": "custom_id", "pattern": "^(sub_[a-z]+):"}
    monkeypatch.setenv("METERING_CONFIG", json.dumps({**config, "subscription_from": ["user", rule]}))
    chat = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1711652795,
            "model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 300,
                                                            "prompt_tokens_details": {"cached_tokens": 1024}}}
    lines = [{"id": "batch_req_1", "custom_id": "sub_acme:row-17", "error": None,
              "response": {"status_code": 200, "request_id": "req_4f5a0e0e7b1c2d3e4f5a6b7c8d9e0f1a", "body": chat}},
             {"id": "batch_req_2", "custom_id": "sub_acme:row-18", "response": None,
              "error": {"code": "batch_expired", "message": "not executed before the batch expired"}},
             {"custom_id": "sub_globex:doc-3", "result": {"type": "succeeded", "message": {
                 "id": "msg_014VwiXbi91y3JMjcpyGBHX5", "type": "message", "model": "claude-sonnet-4-5", "content": [],
                 "usage": {"input_tokens": 11, "cache_read_input_tokens": 2000, "output_tokens": 36}}}}]
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    aws.s3.put_object(Bucket="inference-logs", Key="batches/output.jsonl", Body=body.encode())
    put = aws.s3.head_object(Bucket="inference-logs", Key="batches/output.jsonl")["LastModified"]
    summary = count_tokens.lambda_handler(s3_event("batches/output.jsonl"), LambdaContext())
    assert (summary["metered"], summary["skipped"], summary["dead_letters"]) == (2, {"failed_request": 1}, {})
    first = events_on(aws)
    # OpenAI: 1,200 prompt tokens, 1,024 of them cached; Anthropic: its counts as reported, at the object's time.
    assert sorted((e["external_subscription_id"], e["properties"]["token_type"], e["properties"]["tokens"],
                   e["timestamp"]) for e in first) == [
        ("sub_acme", "cached_input", 1024, "1711652795.000"), ("sub_acme", "input", 176, "1711652795.000"),
        ("sub_acme", "output", 300, "1711652795.000"),
        *sorted(("sub_globex", kind, tokens, f"{int(put.timestamp())}.000")
                for kind, tokens in (("cached_input", 2000), ("input", 11), ("output", 36)))]
    count_tokens.lambda_handler(s3_event("batches/output.jsonl"), LambdaContext())  # delivered again
    assert sorted(e["transaction_id"] for e in events_on(aws)) == sorted(e["transaction_id"] for e in first)


def test_s3_bad_objects_and_lines(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="empty.jsonl", Body=b"")
    broken = gzip.compress((json.dumps(OLLAMA) + "\n").encode() * 50)
    aws.s3.put_object(Bucket="inference-logs", Key="cut.jsonl.gz", Body=broken[: len(broken) // 2])
    lines = [json.dumps(OLLAMA).encode(), b'{"model": "llama3.2", "prompt": "caf\xe9", "user": "sub_1"}',
             json.dumps({**OLLAMA, "user": "caf\udcff"}, ensure_ascii=True).encode(), b"\xff\xfe garbage"]
    aws.s3.put_object(Bucket="inference-logs", Key="mixed.jsonl", Body=b"\n".join(lines))
    summary = count_tokens.lambda_handler(
        s3_event("empty.jsonl", "missing.jsonl", "cut.jsonl.gz", "mixed.jsonl"), LambdaContext()
    )
    assert summary["skipped"] == {"empty_object": 1}
    # Line 3's subscription id holds a lone surrogate: no NATS subject or Lago path can carry it.
    assert summary["dead_letters"] == {"object_missing": 1, "decode_error": 1, "invalid_utf8": 1, "malformed_json": 1,
                                       "invalid_identifier": 1}
    assert summary["metered"] == 1  # mixed.jsonl line 1
    letters = {d["reason"]: d for d in drain(aws.sqs, aws.dead_url)}
    assert letters["object_missing"]["source"] == "s3://inference-logs/missing.jsonl"
    assert letters["invalid_utf8"]["source"] == "s3://inference-logs/mixed.jsonl#line=2"


def test_many_events_are_packed_into_few_messages_under_the_size_limit(count_tokens, aws):
    body = "\n".join(json.dumps({**OLLAMA, "eval_count": i + 1}) for i in range(3000)).encode()
    aws.s3.put_object(Bucket="inference-logs", Key="big.jsonl", Body=body)
    summary = count_tokens.lambda_handler(s3_event("big.jsonl"), LambdaContext())
    messages = drain(aws.sqs, aws.usage_url)
    assert summary["events"] == 6000
    assert 10 < len(messages) < 300
    assert all(len(json.dumps(m, separators=(",", ":"))) <= 25_000 for m in messages)
    events = [e for m in messages for e in m["events"]]
    assert len({e["transaction_id"] for e in events}) == 6000
    assert sum(e["properties"]["tokens"] for e in events if e["properties"]["token_type"] == "output") == 3000 * 3001 // 2


def test_failed_delivery_fails_the_invocation(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("USAGE_QUEUE_URL", aws.usage_url + "-gone")
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        count_tokens.lambda_handler(cloudwatch_event([json.dumps(OLLAMA)]), LambdaContext())


def test_missing_configuration_is_a_clear_error(count_tokens, monkeypatch):
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    with pytest.raises(MeteringConfigError, match="DEAD_LETTER_QUEUE_URL"):
        count_tokens.lambda_handler(cloudwatch_event([]), LambdaContext())
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq")
    monkeypatch.setenv("METERING_CONFIG", '{"tokenisers": {}}')
    with pytest.raises(MeteringConfigError, match="unknown key 'tokenisers'"):
        count_tokens.lambda_handler(cloudwatch_event([]), LambdaContext())


def test_a_dead_letter_keeps_the_whole_log_line_and_replays_from_it(count_tokens, aws, capsys, monkeypatch):
    from tokenmeter.cli.cli import main

    prefix = "2024-11-26T18:41:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t"
    lines = ["upstream said: {", prefix + json.dumps({**OLLAMA, "metadata": {"team": "sub_globex"}})]
    summary = count_tokens.lambda_handler(cloudwatch_event(lines), LambdaContext())
    assert summary["dead_letters"] == {"malformed_json": 1, "unattributed": 1}
    letters = {d["reason"]: d for d in drain(aws.sqs, aws.dead_url)}
    # The record as it was logged, not cut at its first brace.
    assert letters["malformed_json"]["record"] == "upstream said: {"
    assert letters["unattributed"]["record"] == lines[1]
    for letter in letters.values():  # back on the queue, for the replay below
        aws.sqs.send_message(QueueUrl=aws.dead_url, MessageBody=json.dumps(letter))
    config = json.loads(os.environ["METERING_CONFIG"])
    monkeypatch.setenv("METERING_CONFIG", json.dumps({**config, "subscription_from": ["metadata.team"]}))
    assert main(["replay", "records"]) == 0
    assert "metered 1" in capsys.readouterr().out  # the prefixed line, read past its prefix
    assert {e["external_subscription_id"] for e in events_on(aws)} == {"sub_globex"}


def test_a_letter_that_escapes_past_a_message_is_cut_to_fit_and_the_batch_is_delivered(count_tokens, aws,
                                                                                        monkeypatch):
    config = json.loads(os.environ["METERING_CONFIG"])
    monkeypatch.setenv("METERING_CONFIG", json.dumps({**config, "dead_letter_record_max_bytes": 200_000}))
    # 150,000 control characters: within the 200,000 bytes allowed in UTF-8, 900,000 once each is written "\u0001".
    line = "bad: {" + "\x01" * 150_000
    summary = count_tokens.lambda_handler(cloudwatch_event([line, json.dumps(OLLAMA)]), LambdaContext())
    assert summary["dead_letters"] == {"malformed_json": 1} and summary["events"] == 2
    assert len(events_on(aws)) == 2
    [message] = aws.sqs.receive_message(QueueUrl=aws.dead_url, MaxNumberOfMessages=10)["Messages"]
    assert len(message["Body"]) <= 250_000  # what one SendMessageBatch of the outbox holds, and any queue takes
    letter = json.loads(message["Body"])
    assert letter["reason"] == "malformed_json" and letter["record"].startswith("bad: {\x01\x01")
    assert letter["record"].endswith(f"... [truncated from {len(line)} bytes]")  # the whole line's size (ASCII)
    # Cut no shorter than it must be: 250,000 bytes, six per character, less the letter's other fields.
    assert 250_000 // 6 - 500 < len(letter["record"]) < 250_000 // 6


def test_a_log_group_in_lambda_json_format_bills_its_logged_responses_and_skips_its_platform_lines(count_tokens,
                                                                                                   aws):
    request = "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"
    lines = [{"time": "2024-11-26T18:41:00.000Z", "type": "platform.start",
              "record": {"requestId": request, "version": "$LATEST"}},
             {"timestamp": "2024-11-26T18:41:00.100Z", "level": "INFO", "message": json.dumps(OLLAMA),
              "logger": "root", "requestId": request},
             {"time": "2024-11-26T18:41:00.200Z", "type": "platform.report",
              "record": {"requestId": request, "status": "success", "metrics": {"durationMs": 120.5}}}]
    summary = count_tokens.lambda_handler(cloudwatch_event([json.dumps(line) for line in lines]), LambdaContext())
    assert (summary["metered"], summary["skipped"], summary["dead_letters"]) == (1, {"platform_line": 2}, {})
    assert sorted((e["external_subscription_id"], e["properties"]["token_type"], e["properties"]["tokens"])
                  for e in events_on(aws)) == [("sub_globex", "input", 26), ("sub_globex", "output", 290)]


ANTHROPIC_STREAM = [  # Anthropic's documented stream, one event per log line
    {"type": "message_start", "message": {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                                          "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": None,
                                          "usage": {"input_tokens": 25, "cache_read_input_tokens": 100,
                                                    "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 15}},
    {"type": "message_stop"},
]


def test_an_anthropic_stream_split_between_deliveries_bills_once(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_stream"}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")
    lines = [json.dumps(event) for event in ANTHROPIC_STREAM]
    first = cloudwatch_event(lines[:3], start_ms=1_732_646_400_000)
    second = cloudwatch_event(lines[3:], start_ms=1_732_646_400_003)
    assert count_tokens.lambda_handler(first, LambdaContext())["metered"] == 1  # the input, at the end
    kept = aws.s3.list_objects_v2(Bucket="inference-logs", Prefix="tokenmeter-streams/").get("Contents", [])
    assert len(kept) == 1
    assert count_tokens.lambda_handler(second, LambdaContext())["metered"] == 1  # the output
    once = events_on(aws)
    count_tokens.lambda_handler(second, LambdaContext())  # a retried delivery pairs as the first did
    again = events_on(aws)
    totals = {}
    for event in once:
        totals[event["properties"]["token_type"]] = totals.get(event["properties"]["token_type"], 0) + \
            event["properties"]["tokens"]
    assert totals == {"input": 25, "cached_input": 100, "output": 15}
    assert len({e["transaction_id"] for e in once}) == 3
    assert again == [e for e in once if e["properties"]["token_type"] == "output"]  # the same id, the same event
    # A delta whose start was lost does not pair with the message already ended: dead-lettered, not misbilled.
    orphan = cloudwatch_event(lines[4:5], start_ms=1_732_646_400_009)
    assert count_tokens.lambda_handler(orphan, LambdaContext())["dead_letters"] == {"stream_unpaired": 1}
    assert events_on(aws) == []
    # A new start whose end is not delivered yet replaces what was kept.
    count_tokens.lambda_handler(cloudwatch_event(lines[:1], start_ms=1_732_646_400_020), LambdaContext())
    count_tokens.lambda_handler(cloudwatch_event(lines[4:5], start_ms=1_732_646_400_030), LambdaContext())
    assert sorted(e["properties"]["token_type"] for e in events_on(aws)) == ["cached_input", "input", "output"]


def test_an_unreadable_stream_memory_fails_the_invocation_for_a_retry(count_tokens, aws, monkeypatch):
    """S3 refusing the stream memory is not the record's fault: the delivery fails (Lambda retries it) rather
    than dead-lettering the delta; once S3 answers, the retry bills it once."""
    from botocore.exceptions import ClientError

    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_stream"}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")
    lines = [json.dumps(event) for event in ANTHROPIC_STREAM]
    count_tokens.lambda_handler(cloudwatch_event(lines[:3], start_ms=1_732_646_400_000), LambdaContext())
    events_on(aws)  # the input, billed at the first delivery's end
    second = cloudwatch_event(lines[3:], start_ms=1_732_646_400_003)
    real_get = aws.s3.get_object

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(count_tokens, "aws_client", lambda name: aws.s3 if name == "s3" else aws.sqs)
    monkeypatch.setattr(aws.s3, "get_object", denied)
    with pytest.raises(Exception, match="stream memory .* unreadable: ClientError"):
        count_tokens.lambda_handler(second, LambdaContext())
    assert events_on(aws) == [] and drain(aws.sqs, aws.dead_url) == []
    monkeypatch.setattr(aws.s3, "get_object", real_get)
    assert count_tokens.lambda_handler(second, LambdaContext())["metered"] == 1
    assert [(e["properties"]["token_type"], e["properties"]["tokens"]) for e in events_on(aws)] == [("output", 15)]


def test_a_bedrock_body_logged_apart_is_billed_once_by_its_log_record(count_tokens, aws, monkeypatch):
    # A request past Bedrock's inline limit: the log record holds the counts and names the body it put under
    # data/; that body, a Claude response with usage of its own, reaches count_tokens too, in the same bucket.
    config = json.loads(os.environ["METERING_CONFIG"])
    monkeypatch.setenv("METERING_CONFIG", json.dumps({**config, "default_subscription": "sub_default"}))
    hour = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2024/11/26/18"
    body_key = f"{hour}/data/5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10_output.json.gz"
    record = {**BEDROCK, "operation": "InvokeModel",
              "output": {"outputContentType": "application/json", "outputTokenCount": 20,
                         "outputBodyS3Path": f"s3://inference-logs/{body_key}"}}
    body = {"id": "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": "claude-3-haiku-20240307", "content": [{"type": "text", "text": "..."}],
            "usage": {"input_tokens": 60, "output_tokens": 20, "cache_read_input_tokens": 40}}
    aws.s3.put_object(Bucket="inference-logs", Key=f"{hour}/20241126T184000Z_6ef8e4c4.json.gz",
                      Body=gzip.compress(json.dumps(record).encode() + b"\n"))
    aws.s3.put_object(Bucket="inference-logs", Key=body_key, Body=gzip.compress(json.dumps(body).encode()))
    summary = count_tokens.lambda_handler(s3_event(f"{hour}/20241126T184000Z_6ef8e4c4.json.gz", body_key),
                                          LambdaContext())
    assert summary["metered"] == 1 and summary["skipped"] == {"bedrock_body": 1} and summary["dead_letters"] == {}
    # The record's counts alone (100 input, 40 read from the cache, 20 output), not the body's again.
    assert sorted((e["properties"]["token_type"], e["properties"]["tokens"]) for e in events_on(aws)) == [
        ("cached_input", 40), ("input", 100), ("output", 20)]


def test_a_realtime_session_names_the_model_of_turns_in_later_deliveries(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_voice"}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")
    session = {"type": "session.created", "event_id": "event_C9G5RJeJ2gF77mV7f2B1j",
               "session": {"object": "realtime.session", "id": "sess_C9G5QPteg4UIbotdKLoYQ", "model": "gpt-realtime"}}
    turn = {"type": "response.done", "event_id": "event_3132",
            "response": {"object": "realtime.response", "id": "resp_CUyE8m0VwMqmHIuQVLD2x", "status": "completed",
                         "usage": {"input_tokens": 40, "output_tokens": 12,
                                   "input_token_details": {"audio_tokens": 30, "text_tokens": 10}}}}
    first = count_tokens.lambda_handler(cloudwatch_event([json.dumps(session)]), LambdaContext())
    assert first["skipped"] == {"realtime_event": 1}
    second = count_tokens.lambda_handler(cloudwatch_event([json.dumps(turn)], start_ms=1_732_646_460_000),
                                         LambdaContext())
    assert second["metered"] == 1 and second["dead_letters"] == {}
    # 40 input tokens, 30 of them audio; 12 output tokens, none audio.
    assert sorted((e["properties"]["model"], e["properties"]["token_type"], e["properties"]["tokens"])
                  for e in events_on(aws)) == [("gpt-realtime", "input", 10), ("gpt-realtime", "input_audio", 30),
                                               ("gpt-realtime", "output", 12)]


def test_a_groq_stream_over_three_deliveries_bills_its_usage_once_and_no_text(count_tokens, aws, monkeypatch,
                                                                              llama3_dir):
    # A long stream: its first chunk (x_groq names the request), then middle chunks alone in a delivery, then the
    # rest with the last chunk, whose x_groq carries the usage (groq-python's ChatCompletionChunk.x_groq).
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_groq",
                                                      "tokenizers": {"llama*": llama3_dir}}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")
    base = {"id": "chatcmpl-4a6e3b2c-9a1d-4f0e-8c3b-2d7e5f1a9b08", "object": "chat.completion.chunk",
            "created": 1730241104, "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_c0cfa69934"}

    def chunk(delta, finish=None, **extra):
        return json.dumps({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                "finish_reason": finish}], **extra})

    deliveries = [[chunk({"role": "assistant", "content": ""}, x_groq={"id": "req_01jbd6g2qdfw2adyrt2az8hz4w"}),
                   chunk({"content": "Fast"})],
                  [chunk({"content": " inference"}), chunk({"content": " at"})],
                  [chunk({"content": " scale"}),
                   chunk({}, "stop", x_groq={"id": "req_01jbd6g2qdfw2adyrt2az8hz4w", "usage": {
                       "queue_time": 0.021, "prompt_tokens": 43, "prompt_time": 0.0021, "completion_tokens": 4,
                       "completion_time": 0.0109, "total_tokens": 47, "total_time": 0.013}})]]
    summaries = [count_tokens.lambda_handler(cloudwatch_event(lines, start_ms=1_730_241_104_000 + 10 * n),
                                             LambdaContext()) for n, lines in enumerate(deliveries)]
    assert [s["metered"] for s in summaries] == [0, 0, 1]
    assert all(s["dead_letters"] == {} for s in summaries)
    assert sorted((e["properties"]["token_type"], e["properties"]["tokens"]) for e in events_on(aws)) == [
        ("input", 43), ("output", 4)]
    # Once the stream ended, nothing of it is kept.
    assert aws.s3.list_objects_v2(Bucket="inference-logs", Prefix="tokenmeter-streams/").get("KeyCount", 0) == 0


def test_a_mistral_stream_over_three_deliveries_bills_its_usage_once_and_no_text(count_tokens, aws, monkeypatch,
                                                                                llama3_dir):
    # Mistral's chunks have no usage key until the last, which carries it: nothing before says it will come. A
    # whole stream in the first delivery shows it; the next stream's parts, alone in later deliveries, wait for
    # their usage (remembered in the stream memory) instead of being counted from their text.
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_mistral",
                                                      "tokenizers": {"mistral*": llama3_dir}}))
    monkeypatch.setenv("STREAM_MEMORY_BUCKET", "inference-logs")

    def chunk(stream_id, delta, finish=None, **extra):
        return json.dumps({"id": stream_id, "object": "chat.completion.chunk", "created": 1702256327,
                           "model": "mistral-small-latest",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    first, second = "cmpl-e5cc70bb28c444948073e77776eb30ef", "cmpl-0a1b2c3d4e5f40718293a4b5c6d7e8f9"
    deliveries = [[chunk(first, {"role": "assistant", "content": ""}), chunk(first, {"content": "Hi!"}),
                   chunk(first, {}, "stop", usage={"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}),
                   chunk(second, {"role": "assistant", "content": ""}), chunk(second, {"content": "Paris"})],
                  [chunk(second, {"content": " is the capital"}), chunk(second, {"content": " of France"})],
                  [chunk(second, {"content": "."}, "stop",
                         usage={"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22})]]
    summaries = [count_tokens.lambda_handler(cloudwatch_event(lines, start_ms=1_702_256_327_000 + 10 * n),
                                             LambdaContext()) for n, lines in enumerate(deliveries)]
    assert [s["metered"] for s in summaries] == [1, 0, 1]
    assert all(s["dead_letters"] == {} for s in summaries)
    assert sorted((e["properties"]["token_type"], e["properties"]["tokens"]) for e in events_on(aws)) == [
        ("input", 10), ("input", 15), ("output", 2), ("output", 7)]
