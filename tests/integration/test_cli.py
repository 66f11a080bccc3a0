"""The `tokenmeter` operations command against the local stack: moto for SQS and S3, a real
nats-server, the Lago emulator. Expected events come from count_tokens itself metering the same
input fresh, so a replay or backfill is checked to bill exactly what the pipeline would have."""

import gzip
import json
import os

import pytest
from conftest import IN_PERIOD, LambdaContext, cloudwatch_event, drain, publish_to_ledger, seed_per_token_plan

from tokenmeter.cli.cli import main

SUBSCRIPTIONS = {"sub_acme": "acme", "sub_globex": "globex"}


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what the functions logged before
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def openai(i: int, **fields) -> str:
    return json.dumps({"id": f"chatcmpl-{i:020d}", "object": "chat.completion", "created": 1732646400 + i,
                       "model": "gpt-4o", "usage": {"prompt_tokens": 100 + i, "completion_tokens": 10 + i}, **fields})


def events_of(bodies) -> dict[str, int]:
    return {e["transaction_id"]: e["properties"]["tokens"] for body in bodies for e in body["events"]}


def fresh_events(count_tokens, aws, event) -> dict[str, int]:
    """What count_tokens bills for ``event`` under the current config (then taken off the queue)."""
    count_tokens._settings = None
    count_tokens.lambda_handler(event, LambdaContext())
    return events_of(drain(aws.sqs, aws.usage_url))


def test_replay_records_after_a_config_fix(count_tokens, aws, capsys, monkeypatch):
    batch = cloudwatch_event([openai(1, metadata={"team": "sub_acme"}), openai(2, user="sub_globex")])
    for _ in range(2):  # delivered twice: the dead letter is in the queue twice, under one id
        count_tokens.lambda_handler(batch, LambdaContext())
    count_tokens.lambda_handler({"awslogs": {"data": "%%% not base64"}}, LambdaContext())
    billed_before = events_of(drain(aws.sqs, aws.usage_url))  # the second record's

    code, out, _ = run(capsys, "replay", "records", "--dry-run", "--json")
    assert code == 0
    assert sorted((o["reason"], o["action"]) for o in json.loads(out)) == [
        ("decode_error", "not_replayable"), ("unattributed", "still_dead")]
    assert drain(aws.sqs, aws.usage_url) == []

    config = json.loads(os.environ["METERING_CONFIG"])
    config["subscription_from"].append("metadata.team")
    monkeypatch.setenv("METERING_CONFIG", json.dumps(config))
    code, out, _ = run(capsys, "replay", "records", "--dry-run", "--json")
    assert [o["action"] for o in json.loads(out) if o["reason"] == "unattributed"] == ["metered"]
    assert drain(aws.sqs, aws.usage_url) == []

    code, out, _ = run(capsys, "replay", "records")
    assert code == 0 and "metered 1" in out and "not_replayable 1" in out
    replayed = events_of(drain(aws.sqs, aws.usage_url))
    fresh = fresh_events(count_tokens, aws, batch)  # the batch metered from scratch with the fixed config
    assert replayed == {tid: tokens for tid, tokens in fresh.items() if tid not in billed_before}
    assert sorted(replayed.values()) == [11, 101]  # openai(1): 101 prompt, 11 completion tokens
    left = drain(aws.sqs, aws.dead_url)
    assert [d["reason"] for d in left] == ["decode_error"]  # what cannot be replayed stays

    code, out, _ = run(capsys, "replay", "records")
    assert "nothing to replay" in out and drain(aws.sqs, aws.usage_url) == []


def otlp_attr(key, value):
    return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}


def test_replay_of_an_opentelemetry_span_and_log_record_after_a_config_fix(count_tokens, aws, capsys, monkeypatch):
    # One export of spans and one of logs (Gemini CLI's), the tenant named only by their resource: unattributed
    # until the config reads it. Each dead letter holds its span or record alone under its resource and scope.
    resource = {"attributes": [otlp_attr("service.name", "support-bot"), otlp_attr("tenant.id", "sub_globex")]}
    chat = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "parentSpanId": "",
            "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": "1732646400000000000",
            "endTimeUnixNano": "1732646401250000000",
            "attributes": [otlp_attr("gen_ai.request.model", "gpt-4o"), otlp_attr("gen_ai.usage.input_tokens", 230),
                           otlp_attr("gen_ai.usage.output_tokens", 45)]}
    spans = {"resourceSpans": [{"resource": resource, "scopeSpans": [
        {"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": [chat]}]}]}
    answer = {"timeUnixNano": "1732646402000000000", "attributes": [
        otlp_attr("event.name", "gemini_cli.api_response"), otlp_attr("model", "gemini-2.5-flash"),
        otlp_attr("input_token_count", 900), otlp_attr("output_token_count", 40)]}
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [
        {"scope": {"name": "gemini-cli"}, "logRecords": [{"timeUnixNano": "1732646401900000000", "attributes": [
            otlp_attr("event.name", "gemini_cli.user_prompt"), otlp_attr("prompt_length", 31)]}, answer]}]}]}
    aws.s3.put_object(Bucket="inference-logs", Key="otel/export.jsonl",
                      Body=(json.dumps(spans) + "\n" + json.dumps(logs) + "\n").encode())
    notified = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "inference-logs"}, "object": {"key": "otel/export.jsonl"}}}]}
    count_tokens.lambda_handler(notified, LambdaContext())
    assert drain(aws.sqs, aws.usage_url) == []

    config = json.loads(os.environ["METERING_CONFIG"])
    config["subscription_from"].append("resource.tenant.id")
    monkeypatch.setenv("METERING_CONFIG", json.dumps(config))
    code, out, _ = run(capsys, "replay", "records")
    assert code == 0 and "metered 2" in out
    replayed = events_of(drain(aws.sqs, aws.usage_url))
    # The same events as the object metered from scratch with the fixed config: the span's 230 + 45, the answer's
    # 900 + 40, under the ids they would always have had.
    assert replayed == fresh_events(count_tokens, aws, notified)
    assert sorted(replayed.values()) == [40, 45, 230, 900]
    assert drain(aws.sqs, aws.dead_url) == []


def test_replay_failed_invocations(count_tokens, aws, capsys, monkeypatch):
    failures = aws.sqs.create_queue(QueueName="failures")["QueueUrl"]
    monkeypatch.setenv("INVOCATION_FAILURE_QUEUE_URL", failures)
    payload = cloudwatch_event([openai(7, user="sub_acme"), openai(8, user="sub_globex")])
    aws.sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({
        "version": "1.0", "requestContext": {"requestId": "5f1e", "condition": "RetriesExhausted",
                                             "approximateInvokeCount": 3},
        "requestPayload": payload, "responseContext": {"statusCode": 200, "functionError": "Unhandled"}}))

    code, out, _ = run(capsys, "replay", "failures", "--dry-run")
    assert code == 0 and "metered 1" in out and drain(aws.sqs, aws.usage_url) == []

    code, out, _ = run(capsys, "replay", "failures")
    assert code == 0 and "(4 events)" in out
    assert events_of(drain(aws.sqs, aws.usage_url)) == fresh_events(count_tokens, aws, payload)
    assert drain(aws.sqs, failures) == []


def test_missing_queue_is_a_clear_error(aws, capsys, monkeypatch):
    monkeypatch.delenv("INVOCATION_FAILURE_QUEUE_URL", raising=False)
    code, _, err = run(capsys, "replay", "failures")
    assert code == 2 and "INVOCATION_FAILURE_QUEUE_URL is not set" in err


def usage_events(subscription: str, n: int, start: int = 0) -> list[dict]:
    return [{"transaction_id": f"{subscription}-{i:04d}-input", "external_subscription_id": subscription,
             "code": "llm_tokens", "timestamp": f"{IN_PERIOD - i * 60}.250",
             "properties": {"tokens": 100 * (i + 1), "model": "gpt-4o", "token_type": "output" if i % 2 else "input"}}
            for i in range(start, start + n)]


def test_status_usage_preview_and_usage_replay(lago_sync, reconcile, nats_server, lago_client, capsys, monkeypatch):
    from lago_python_client.models import Customer, Subscription

    monkeypatch.setenv("UNKNOWN_SUBSCRIPTION_HOLD_SECONDS", "0")
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    known, early = usage_events("sub_acme", 6), usage_events("sub_new", 3)
    publish_to_ledger(nats_server.url, known + early)
    code, out, _ = run(capsys, "status", "--json")
    before = json.loads(out)
    assert before["consumer"]["pending"] == 9 and before["consumer"]["oldest_unshipped_seconds"] >= 0
    assert before["last_reconciliation"] is None and before["usage_dead_letters"] == {}

    summary = lago_sync.lambda_handler({}, LambdaContext())
    assert summary["shipped"] == 6 and summary["dead_lettered"] == {"unknown_subscription": 3}
    status = json.loads(run(capsys, "status", "--json")[1])
    assert status["consumer"]["pending"] == 0 and status["consumer"]["ack_pending"] == 0
    assert status["usage_dead_letters"] == {"unknown_subscription": 3} and status["usage_dead_letters_waiting"] == 3
    # The status caught the running totals up: 9 ledger messages counted, none behind.
    assert status["totals"] == {"through_seq": 9, "behind": 0} and status["last_reconciliation"] is None
    assert reconcile.lambda_handler({}, LambdaContext())["reconciliation"]["drifting"] == []
    text = run(capsys, "status")[1]
    assert "USAGE_DLQ: 3 waiting" in text and "USAGE_DLQ, ever: unknown_subscription 3" in text
    assert "last reconciliation" in text and "2 subscriptions checked" in text

    preview = json.loads(run(capsys, "usage", "sub_acme", "--json")[1])
    # gpt-4o: inputs are events 0, 2, 4 (100 + 300 + 500), outputs 1, 3, 5 (200 + 400 + 600)
    assert preview["totals"] == [{"code": "llm_tokens", "ledger": "2100", "lago": "2100", "drift": "0"}]
    assert {(r["model"], r["token_type"]): r["ledger"] for r in preview["rows"]} == {
        ("gpt-4o", "input"): "900", ("gpt-4o", "output"): "1200"}
    assert next(r["lago"] for r in preview["rows"] if r["token_type"] == "output") == "1200"  # the priced filter
    code, _, err = run(capsys, "usage", "sub_new")
    assert code == 2 and "no active subscription 'sub_new'" in err

    out = run(capsys, "replay", "usage", "--dry-run")[1]
    assert "republished 3" in out and "still unknown to Lago" in out
    lago_client.customers.create(Customer(external_id="newco", name="newco", currency="USD"))
    lago_client.subscriptions.create(Subscription(external_customer_id="newco", plan_code="per_token",
                                                  external_id="sub_new", subscription_at="2026-01-01T00:00:00Z"))
    out = run(capsys, "replay", "usage")[1]
    assert "republished 3" in out and "still unknown" not in out
    after = json.loads(run(capsys, "status", "--json")[1])
    assert after["usage_dead_letters_waiting"] == 0 and after["usage_dead_letters"] == {"unknown_subscription": 3}
    assert "nothing to replay" in run(capsys, "replay", "usage")[1]

    lago_sync._runtime.lago._subscriptions.clear()  # lago_sync's cache still says sub_new is unknown
    for _ in range(5):
        if lago_sync.lambda_handler({}, LambdaContext())["pending"] == 0:
            break
    new = json.loads(run(capsys, "usage", "sub_new", "--json")[1])
    assert new["totals"] == [{"code": "llm_tokens", "ledger": "600", "lago": "600", "drift": "0"}]


BEDROCK = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "operation": "Converse",
           "modelId": "anthropic.claude-3-haiku-20240307-v1:0", "requestMetadata": {"subscription_id": "sub_acme"}}


def bedrock_object(hour: str, n: int) -> bytes:
    lines = [json.dumps({**BEDROCK, "timestamp": f"{hour}:0{i}:00Z", "requestId": f"{hour}-{i}",
                         "input": {"inputTokenCount": 10 + i}, "output": {"outputTokenCount": 1 + i}}) for i in range(n)]
    return gzip.compress("\n".join(lines).encode())


def test_backfill_a_prefix_and_range_resumably(count_tokens, aws, capsys, tmp_path):
    base = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1"
    objects = {f"{base}/2026/11/01/05/a b.json.gz": bedrock_object("2026-11-01T05", 3),
               f"{base}/2026/11/01/23/c.json.gz": bedrock_object("2026-11-01T23", 2),
               f"{base}/2026/10/31/23/old.json.gz": bedrock_object("2026-10-31T23", 2),
               f"{base}/2026/11/02/00/next-day.json.gz": bedrock_object("2026-11-02T00", 2)}
    for key, body in objects.items():
        aws.s3.put_object(Bucket="inference-logs", Key=key, Body=body)
    in_range = list(objects)[:2]
    state = tmp_path / "state.json"
    args = ["backfill", f"s3://inference-logs/{base}/", "--since", "2026-11-01", "--until", "2026-11-02",
            "--state", str(state)]

    code, out, _ = run(capsys, *args, "--dry-run")
    assert code == 0 and "2 objects metered" in out and drain(aws.sqs, aws.usage_url) == [] and not state.exists()

    state.write_text(json.dumps({"done": {in_range[0]: "stale-etag"}}))  # an earlier run, object since changed
    code, out, _ = run(capsys, *args, "--json")
    assert json.loads(out) == {"objects": 2, "already_done": 0, "records": 5, "events": 10, "dead_letters": {}}
    backfilled = events_of(drain(aws.sqs, aws.usage_url))
    expected = {}
    for key in in_range:
        expected |= fresh_events(count_tokens, aws, {"Records": [{"s3": {"bucket": {"name": "inference-logs"},
                                                                         "object": {"key": key.replace(" ", "+")}}}]})
    assert backfilled == expected and len(expected) == 10

    code, out, _ = run(capsys, *args)
    assert "0 objects metered (2 done before)" in out and drain(aws.sqs, aws.usage_url) == []


@pytest.mark.parametrize("since, until, message", [("2026-11-02", "2026-11-01", "--until must be after --since"),
                                                   ("yesterday", "2026-11-01", "not an ISO date")])
def test_backfill_refuses_a_bad_range(aws, capsys, since, until, message):
    code, _, err = run(capsys, "backfill", "s3://inference-logs/x/", "--since", since, "--until", until)
    assert code == 2 and message in err


def test_backfill_refuses_a_location_that_is_not_s3(aws, capsys):
    code, _, err = run(capsys, "backfill", "/var/log", "--since", "2026-11-01", "--until", "2026-11-02")
    assert code == 2 and "expected s3://bucket/prefix" in err


def test_backfill_says_what_aws_refused_rather_than_a_traceback(aws, capsys):
    code, _, err = run(capsys, "backfill", "s3://no-such-bucket/x/", "--since", "2026-11-01", "--until", "2026-11-02")
    assert code == 1 and "tokenmeter backfill: AWS:" in err and "NoSuchBucket" in err


def test_the_command_without_a_region_says_so(monkeypatch, capsys, tmp_path):
    from tokenmeter.core.aws import reset_clients

    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # (restored after the test, whatever the command set)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    reset_clients()
    try:
        code, _, err = run(capsys, "backfill", "s3://inference-logs/x/", "--since", "2026-11-01", "--until", "2026-11-02")
        assert code == 1 and "You must specify a region" in err
        # AWS_REGION alone, as other SDKs and the AWS CLI read it, is taken.
        monkeypatch.setenv("AWS_REGION", "eu-west-3")
        reset_clients()
        code, _, err = run(capsys, "backfill", "s3://inference-logs/x/", "--since", "2026-11-01", "--until", "2026-11-02")
        assert code == 1 and "Unable to locate credentials" in err  # past the region, to the next thing missing
        from tokenmeter.core.aws import aws_client

        assert aws_client("s3").meta.region_name == "eu-west-3"
    finally:
        reset_clients()


def test_the_set_up_installs_the_command():
    import subprocess
    import sys
    from pathlib import Path

    installed = Path(sys.executable).parent / "tokenmeter"
    for argv in ([str(installed), "--help"], [sys.executable, "-m", "tokenmeter", "--help"]):
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=60)
        assert result.returncode == 0, result.stderr
        assert all(command in result.stdout for command in ("status", "usage", "replay", "backfill"))


def test_object_time_comes_from_a_date_path_or_else_last_modified():
    from datetime import UTC, datetime

    from tokenmeter.cli.backfill import object_time

    modified = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    base = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1"
    assert object_time(f"{base}/2026/11/01/05/x.json.gz", modified) == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert object_time("gateway/2024/11/26/ollama.jsonl.gz", modified) == datetime(2024, 11, 26, tzinfo=UTC)
    assert object_time("builds/2024/99/99/x.jsonl", modified) == modified  # digits that are no date
    assert object_time("gateway/today.jsonl", modified) == modified


def test_backfill_reads_opentelemetry_traces_and_litellm_logs(aws, capsys, tmp_path, count_tokens):
    from local.demo import sample_litellm, sample_trace

    aws.s3.put_object(Bucket="inference-logs", Key="otel/2026/11/01/05/traces-1.json.gz",
                      Body=gzip.compress(json.dumps(sample_trace()).encode()))
    aws.s3.put_object(Bucket="inference-logs", Key="otel/2026/11/01/06/litellm-1.json",
                      Body=json.dumps(sample_litellm()).encode())
    code, out, _ = run(capsys, "backfill", "s3://inference-logs/otel/", "--since", "2026-11-01", "--until",
                       "2026-11-02", "--state", str(tmp_path / "state.json"), "--json")
    # The trace's three spans are three records: the agent's sum skipped, its two model calls billed.
    assert code == 0 and json.loads(out) == {"objects": 2, "already_done": 0, "records": 4, "events": 8,
                                             "dead_letters": {}}
    totals = {}
    for body in drain(aws.sqs, aws.usage_url):
        for event in body["events"]:
            key = (event["external_subscription_id"], event["properties"]["token_type"])
            totals[key] = totals.get(key, 0) + event["properties"]["tokens"]
    # Trace: 120,000 - 40,000 cached + 30,000 input; 8,000 + 5,000 output. LiteLLM: 50,000 - 10,000; 7,000.
    assert totals == {("sub_globex", "input"): 150_000, ("sub_globex", "cached_input"): 50_000,
                      ("sub_globex", "output"): 20_000}
