"""count_tokens on S3 notifications delivered through SQS (S3 -> SQS, or S3 -> SNS -> SQS), many objects per
invocation, against moto: what Lambda reads back is the messages to deliver again, and only those."""

import json

from botocore.exceptions import ClientError
from conftest import LambdaContext, drain, events_on
from test_count_tokens_handler import BEDROCK, OLLAMA  # the records the direct-trigger tests meter


def notification(*keys, bucket="inference-logs"):
    """An S3 event notification as S3 writes it (keys URL-encoded)."""
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": "ObjectCreated:Put",
                         "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                "object": {"key": key, "size": 1}}} for key in keys]}


def through_sns(body: dict) -> dict:
    """The SNS envelope SQS holds when a topic fans S3's notifications out without raw message delivery."""
    return {"Type": "Notification", "MessageId": "0f6d1a2b-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:inference-logs", "Subject": "Amazon S3 Notification",
            "Message": json.dumps(body), "Timestamp": "2024-11-26T18:42:00.000Z"}


def sqs_batch(*bodies):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body if isinstance(body, str) else
                         json.dumps(body), "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inference-log-objects",
                         "awsRegion": "us-east-1"} for i, body in enumerate(bodies)]}


def billed(events):
    return sorted((e["external_subscription_id"], e["properties"]["token_type"], e["properties"]["tokens"])
                  for e in events)


def test_objects_of_a_batch_are_metered_and_what_is_no_notification_is_dead_lettered(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="bedrock/a b.json", Body=json.dumps(BEDROCK).encode())
    aws.s3.put_object(Bucket="inference-logs", Key="ollama/b.jsonl", Body=(json.dumps(OLLAMA) + "\n").encode())
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-11-26T18:00:00.000Z",
                  "Bucket": "inference-logs", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8"}
    result = count_tokens.lambda_handler(sqs_batch(notification("bedrock/a+b.json"), through_sns(
        notification("ollama/b.jsonl")), test_event, "not json"), LambdaContext())
    assert result == {"batchItemFailures": []}
    # Bedrock's input excludes its 40 cache reads; Ollama's counts are as logged.
    assert billed(events_on(aws)) == [("sub_acme", "cached_input", 40), ("sub_acme", "input", 100),
                                      ("sub_acme", "output", 20), ("sub_globex", "input", 26),
                                      ("sub_globex", "output", 290)]
    [letter] = drain(aws.sqs, aws.dead_url)
    assert (letter["reason"], letter["source"], letter["record"]) == ("unknown_trigger", "sqs:m3", "not json")


def test_the_same_object_gives_the_same_ids_through_the_queue_as_notified_directly(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="ollama/b.jsonl", Body=(json.dumps(OLLAMA) + "\n") * 2)
    count_tokens.lambda_handler(notification("ollama/b.jsonl"), LambdaContext())
    direct = sorted(e["transaction_id"] for e in events_on(aws))
    count_tokens.lambda_handler(sqs_batch(notification("ollama/b.jsonl")), LambdaContext())
    assert sorted(e["transaction_id"] for e in events_on(aws)) == direct and len(set(direct)) == 4


def test_an_object_s3_refuses_now_leaves_only_its_message_for_a_retry(count_tokens, aws, monkeypatch):
    aws.s3.put_object(Bucket="inference-logs", Key="ok.jsonl", Body=json.dumps(OLLAMA).encode())
    aws.s3.put_object(Bucket="inference-logs", Key="slow.json", Body=json.dumps(BEDROCK).encode())
    real_get = aws.s3.get_object

    def slow_down(**kwargs):
        if kwargs["Key"] == "slow.json":
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                              "GetObject")
        return real_get(**kwargs)

    monkeypatch.setattr(count_tokens, "aws_client", lambda name: aws.s3 if name == "s3" else aws.sqs)
    monkeypatch.setattr(aws.s3, "get_object", slow_down)
    batch = sqs_batch(notification("slow.json"), notification("ok.jsonl"), notification("gone.jsonl"))
    assert count_tokens.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert billed(events_on(aws)) == [("sub_globex", "input", 26), ("sub_globex", "output", 290)]
    # An object that no longer exists will never be read: a dead letter, and its message is done with.
    assert [letter["reason"] for letter in drain(aws.sqs, aws.dead_url)] == ["object_missing"]
    monkeypatch.setattr(aws.s3, "get_object", real_get)
    assert count_tokens.lambda_handler(sqs_batch(notification("slow.json")), LambdaContext()) == {
        "batchItemFailures": []}
    assert billed(events_on(aws)) == [("sub_acme", "cached_input", 40), ("sub_acme", "input", 100),
                                      ("sub_acme", "output", 20)]


class RunningOut(LambdaContext):
    """An invocation with time for ``calls`` looks at the clock, then 4 s left (under the 5 s margin)."""

    def __init__(self, calls: int):
        super().__init__()
        self.calls = calls

    def get_remaining_time_in_millis(self) -> int:
        self.calls -= 1
        return 60_000 if self.calls >= 0 else 4_000


def test_messages_left_when_time_runs_out_are_delivered_again(count_tokens, aws):
    for key in ("a.jsonl", "b.jsonl", "c.jsonl"):
        aws.s3.put_object(Bucket="inference-logs", Key=key, Body=json.dumps({**OLLAMA, "eval_count": len(key)}).encode())
    batch = sqs_batch(notification("a.jsonl"), notification("b.jsonl"), notification("c.jsonl"))
    assert count_tokens.lambda_handler(batch, RunningOut(calls=1)) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert billed(events_on(aws)) == [("sub_globex", "input", 26), ("sub_globex", "output", 7)]


def test_a_failed_delivery_still_fails_the_whole_batch(count_tokens, aws, monkeypatch):
    import pytest

    aws.s3.put_object(Bucket="inference-logs", Key="ok.jsonl", Body=json.dumps(OLLAMA).encode())
    monkeypatch.setenv("USAGE_QUEUE_URL", aws.usage_url + "-gone")
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        count_tokens.lambda_handler(sqs_batch(notification("ok.jsonl")), LambdaContext())


def eventbridge_object_created(key, etag, bucket="inference-logs"):
    """S3's "Object Created" event as EventBridge delivers it: the key as it is, not URL-encoded."""
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2026-11-15T12:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": 100, "etag": etag,
                                  "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}}


def test_eventbridge_object_created_events_are_read_with_their_keys_as_they_are(count_tokens, aws):
    # A "+" in a notification's key is a space; in EventBridge's it is a "+".
    ollama = aws.s3.put_object(Bucket="inference-logs", Key="ollama/a+b:1.jsonl", Body=json.dumps(OLLAMA).encode())
    bedrock = aws.s3.put_object(Bucket="inference-logs", Key="bedrock/c.json", Body=json.dumps(BEDROCK).encode())
    event = eventbridge_object_created("ollama/a+b:1.jsonl", ollama["ETag"].strip('"'))
    summary = count_tokens.lambda_handler(event, LambdaContext())
    assert summary["metered"] == 1 and summary["dead_letters"] == {}
    result = count_tokens.lambda_handler(sqs_batch(eventbridge_object_created("bedrock/c.json", bedrock["ETag"]),
                                                   {**event, "detail": {}}), LambdaContext())
    assert result == {"batchItemFailures": []}
    assert billed(events_on(aws)) == [("sub_acme", "cached_input", 40), ("sub_acme", "input", 100),
                                      ("sub_acme", "output", 20), ("sub_globex", "input", 26),
                                      ("sub_globex", "output", 290)]
    assert [letter["reason"] for letter in drain(aws.sqs, aws.dead_url)] == ["unknown_trigger"]


def test_a_huge_message_that_is_no_notification_is_dead_lettered_cut_and_the_batch_goes_on(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="ollama/b.jsonl", Body=json.dumps(OLLAMA).encode())
    junk = json.dumps({"note": "é" * 200_000}, ensure_ascii=False)  # 1.2 MB escaped to ASCII: past any SQS message
    result = count_tokens.lambda_handler(sqs_batch(junk, notification("ollama/b.jsonl")), LambdaContext())
    assert result == {"batchItemFailures": []}
    assert billed(events_on(aws)) == [("sub_globex", "input", 26), ("sub_globex", "output", 290)]
    [letter] = drain(aws.sqs, aws.dead_url)
    # JSON, so read as a record an app sent to the queue: of no format count_tokens knows.
    assert letter["reason"] == "unknown_format" and letter["record"].startswith('{"note": "ééé')
    # Cut at the configured 32,768 bytes (two per "é"), with a note of the whole size.
    assert letter["record"].endswith(f"... [truncated from {len(junk.encode())} bytes]")
    assert len(letter["record"].encode()) < 32_768 + 40


# What LiteLLM's SQS logger sends (litellm/integrations/sqs.py): one StandardLoggingPayload as JSON per message, here
# with its response redacted (turn_off_message_logging), so the counts are the payload's own.
LITELLM_PAYLOAD = {
    "id": "chatcmpl-6c1e0f3a-4b2d-4e8f-9a7c-5d3b2e1f0a9b", "trace_id": "2b4e6a8c-0d1f-4a3b-8c5d-7e9f1a2b3c4d",
    "call_type": "acompletion", "cache_hit": None, "stream": False, "status": "success",
    "custom_llm_provider": "anthropic", "startTime": 1735254386.762, "endTime": 1735254387.274,
    "completionStartTime": 1735254387.01, "response_time": 0.512, "model": "claude-3-5-haiku-20241022",
    "metadata": {"user_api_key_team_id": "team-acme", "user_api_key_user_id": "user-7", "spend_logs_metadata": None},
    "cache_key": None, "response_cost": 0.0012, "total_tokens": 1380, "prompt_tokens": 1200,
    "completion_tokens": 180, "request_tags": [], "end_user": "", "api_base": "https://api.anthropic.com/v1/messages",
    "model_group": "claude-haiku", "model_id": "b7e2d9", "response": "redacted-by-litellm",
    "messages": "redacted-by-litellm", "model_parameters": {}, "error_str": None,
}


def test_records_an_app_sends_to_the_queue_itself_are_metered_beside_its_notifications(count_tokens, aws,
                                                                                      monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["metadata.user_api_key_team_id",
                                                                            "requestMetadata.subscription_id"]}))
    aws.s3.put_object(Bucket="inference-logs", Key="bedrock/a.json", Body=json.dumps(BEDROCK).encode())
    encrypted = {"__encrypted__": True, "payload": "q2VuY3J5cHRlZA=="}  # its sqs_aws_use_application_level_encryption
    event = sqs_batch(notification("bedrock/a.json"), LITELLM_PAYLOAD, "not json", encrypted)
    event["Records"][1]["attributes"]["SentTimestamp"] = "1735254388000"
    assert count_tokens.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    first = events_on(aws)
    # LiteLLM's call: 1200 prompt and 180 completion tokens, at its end time; Bedrock's as in the first test.
    assert billed(first) == [("sub_acme", "cached_input", 40), ("sub_acme", "input", 100), ("sub_acme", "output", 20),
                             ("team-acme", "input", 1200), ("team-acme", "output", 180)]
    assert {e["timestamp"] for e in first if e["external_subscription_id"] == "team-acme"} == {"1735254387.274"}
    letters = drain(aws.sqs, aws.dead_url)
    assert sorted((letter["reason"], letter["source"]) for letter in letters) == [("decode_error", "sqs:m3"),
                                                                                  ("unknown_trigger", "sqs:m2")]
    # SQS delivers a message at least once: the same message again gives the same events.
    count_tokens.lambda_handler(sqs_batch(notification("bedrock/a.json"), LITELLM_PAYLOAD), LambdaContext())
    assert events_on(aws) == first


# An Anthropic answer as an app logs it: no time of its own.
TIMELESS_ANSWER = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                   "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "Hi"}],
                   "stop_reason": "end_turn", "usage": {"input_tokens": 12, "output_tokens": 6}}


def test_a_queued_record_without_a_time_of_its_own_bills_at_the_time_it_was_sent(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_q"}))
    event = sqs_batch(TIMELESS_ANSWER)
    event["Records"][0]["attributes"]["SentTimestamp"] = "1735254388123"
    count_tokens.lambda_handler(event, LambdaContext())
    assert sorted((e["properties"]["token_type"], e["properties"]["tokens"], e["timestamp"]) for e in events_on(aws)) \
        == [("input", 12, "1735254388.123"), ("output", 6, "1735254388.123")]


def sns_delivery(*messages):
    """An SNS topic's delivery to a subscribed function (S3 -> SNS -> Lambda): each record's Sns is the envelope."""
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                         "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:inference-logs:2f4c6a8e",
                         "Sns": {**through_sns({}), "MessageId": f"95df01b4-ee98-5cb9-9903-4c221d41eb5{i}",
                                 "Message": message if isinstance(message, str) else json.dumps(message),
                                 "Timestamp": "2024-11-26T18:42:00.000Z"}} for i, message in enumerate(messages)]}


def test_s3_notifications_fanned_out_by_sns_to_the_function_are_metered_as_if_notified_directly(count_tokens, aws):
    aws.s3.put_object(Bucket="inference-logs", Key="bedrock/a.json", Body=json.dumps(BEDROCK).encode())
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-11-26T18:00:00.000Z",
                  "Bucket": "inference-logs", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8"}
    summary = count_tokens.lambda_handler(sns_delivery(notification("bedrock/a.json"), test_event, "not json"),
                                          LambdaContext())
    assert summary["skipped"] == {"test_event": 1} and summary["dead_letters"] == {"unknown_trigger": 1}
    through_topic = events_on(aws)
    assert billed(through_topic) == [("sub_acme", "cached_input", 40), ("sub_acme", "input", 100),
                                     ("sub_acme", "output", 20)]
    [letter] = drain(aws.sqs, aws.dead_url)
    assert letter["source"] == "sns:95df01b4-ee98-5cb9-9903-4c221d41eb52" and letter["record"] == "not json"
    # The same object notified directly gives the same events, under the same ids.
    count_tokens.lambda_handler(notification("bedrock/a.json"), LambdaContext())
    assert events_on(aws) == through_topic


def test_a_record_published_to_sns_bills_at_the_time_sns_took_it_when_it_has_none(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"default_subscription": "sub_q"}))
    count_tokens.lambda_handler(sns_delivery(TIMELESS_ANSWER), LambdaContext())
    # 2024-11-26T18:42:00.000Z, the message's Timestamp.
    assert sorted((e["properties"]["token_type"], e["properties"]["tokens"], e["timestamp"]) for e in events_on(aws)) \
        == [("input", 12, "1732646520.000"), ("output", 6, "1732646520.000")]
