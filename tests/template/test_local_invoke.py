"""Each function invoked from `sam build`'s output the way Lambda runs it: the real runtime client
(awslambdaric) against a Runtime API server on loopback, with the sample events in events/."""

import json
import os
import subprocess
import sys

import pytest
from conftest import IN_PERIOD, ROOT, publish_to_ledger, seed_per_token_plan, stream_messages

from local.invoke import invoke
from local.moto_server import MotoServer

EVENTS = ROOT / "events"


@pytest.fixture
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


def run(build, function, event_file, overrides, timeout=60):
    return invoke(build, function, (EVENTS / event_file).read_bytes(), overrides, timeout)


@pytest.mark.slow
def test_count_tokens_built_artifact_meters_the_sample_cloudwatch_batch(sam_build, moto_server, tiktoken_llama3):
    aws = moto_server.environment()
    sqs = moto_server.client("sqs")
    usage = sqs.create_queue(QueueName="usage")["QueueUrl"]
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    kind, result, logs = run(sam_build, "CountTokensFunction", "cloudwatch-logs.json",
                             {"CountTokensFunction": {**aws, "USAGE_QUEUE_URL": usage, "DEAD_LETTER_QUEUE_URL": dead}})
    assert kind == "response", logs
    # Bedrock: input, cache read, cache write, output; OpenAI: input, cached, output, reasoning; the chat: input, output.
    assert result == {"records": 3, "metered": 3, "events": 10, "dead_letters": {}, "skipped": {}}
    body = json.loads(sqs.receive_message(QueueUrl=usage, MaxNumberOfMessages=1)["Messages"][0]["Body"])
    chat_output = [e for e in body["events"] if e["properties"]["model"] == "llama3.2:3b"
                   and e["properties"]["token_type"] == "output"]
    # Counted with the tokenizer the layer build fetched, checked against tiktoken here.
    assert chat_output[0]["properties"]["tokens"] == len(tiktoken_llama3.encode("The meeting is now on Thursday."))


@pytest.mark.slow
def test_count_tokens_built_artifact_renders_chat_templates(sam_build, moto_server, llama3_chat_dir, tiktoken_llama3):
    """The layer carries what a tokenizer with a chat template needs (jinja2), and nothing the build left out
    is needed: the function runs with its layers and the runtime's own packages only."""
    from conftest import cloudwatch_event

    aws = moto_server.environment()
    sqs = moto_server.client("sqs")
    usage = sqs.create_queue(QueueName="usage")["QueueUrl"]
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    config = json.dumps({"tokenizers": {"llama3*": llama3_chat_dir}, "default_subscription": "sub_chat"})
    record = json.dumps({"model": "llama3.2:3b", "messages": [{"role": "user", "content": "Hi"}], "completion": "Hello!",
                         "timestamp": 1732646500})
    env = {**aws, "USAGE_QUEUE_URL": usage, "DEAD_LETTER_QUEUE_URL": dead, "METERING_CONFIG": config}
    kind, result, logs = invoke(sam_build, "CountTokensFunction", json.dumps(cloudwatch_event([record])).encode(),
                                {"CountTokensFunction": env}, 60)
    assert kind == "response" and result["metered"] == 1, (result, logs)
    body = json.loads(sqs.receive_message(QueueUrl=usage, MaxNumberOfMessages=1)["Messages"][0]["Body"])
    tokens = {e["properties"]["token_type"]: e["properties"]["tokens"] for e in body["events"]}
    # Llama 3's template: BOS, the user header (4), "Hi", end of turn, the assistant header (4).
    assert tokens == {"input": 1 + 4 + len(tiktoken_llama3.encode("Hi")) + 1 + 4,
                      "output": len(tiktoken_llama3.encode("Hello!"))}


# The sample events carry fixed dates: the ledger is told to keep ten years, so the contract takes them;
# one nats-server here, so one replica.
KEEP = {"NATS_STREAM_MAX_AGE_DAYS": "3650", "NATS_STREAM_REPLICAS": "1"}
# The names a stack deployed before names came from the stack keeps (the ones the test helpers use).
LEGACY_NAMES = {"NatsStream": "USAGE", "NatsSubjectPrefix": "usage", "NatsConsumer": "lago-sync"}


@pytest.mark.slow
def test_publish_event_and_publish_http_built_artifacts_take_the_sample_events(sam_build, nats_server):
    kind, result, logs = run(sam_build, "PublishEventFunction", "sqs-usage.json",
                             {"PublishEventFunction": {"NATS_URL": nats_server.url, **KEEP}})
    assert (kind, result) == ("response", {"batchItemFailures": []}), logs
    kind, result, logs = run(sam_build, "PublishHttpFunction", "http-post-events.json",
                             {"PublishHttpFunction": {"NATS_URL": nats_server.url, **KEEP}})
    assert kind == "response" and result["statusCode"] == 202, logs
    assert [r["status"] for r in json.loads(result["body"])["results"]] == ["duplicate", "duplicate"]
    # The stream is named after the stack (tokenmeter-local, here), its subjects too.
    ledger = stream_messages(nats_server.url, "tokenmeter-local-USAGE")
    assert len(ledger) == 2 and all(m.subject.startswith("tokenmeter-local-usage.") for m in ledger)


@pytest.mark.slow
def test_lago_sync_and_reconcile_built_artifacts_run_on_their_schedules(sam_build, nats_server, lago, lago_client):
    seed_per_token_plan(lago_client, {"sub_acme": "acme"})
    publish_to_ledger(nats_server.url, [{
        "transaction_id": f"t{i}-input", "external_subscription_id": "sub_acme", "code": "llm_tokens",
        "timestamp": f"{IN_PERIOD}.000", "properties": {"tokens": 100 + i, "model": "gpt-4o", "token_type": "input"}}
        for i in range(10)])
    overrides = {"LagoSyncFunction": {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                                      "LAGO_API_KEY_SECRET_ARN": "", **KEEP}, "Parameters": LEGACY_NAMES}
    kind, result, logs = run(sam_build, "LagoSyncFunction", "schedule.json", overrides)
    assert kind == "response", logs
    assert result["shipped"] == 10 and "reconciliation" not in result
    usage = lago_client.customers.current_usage("acme", "sub_acme")
    assert float(usage.charges_usage[0].units) == sum(100 + i for i in range(10))
    overrides = {"ReconcileFunction": {**overrides["LagoSyncFunction"], "RECONCILE_SETTLE_SECONDS": "0"},
                 "Parameters": LEGACY_NAMES}
    kind, result, logs = run(sam_build, "ReconcileFunction", "schedule.json", overrides)
    assert kind == "response", logs
    assert result["totals"]["applied"]["USAGE"] == 10
    assert result["reconciliation"]["subscriptions"] == 1 and result["reconciliation"]["drifting"] == []


@pytest.mark.slow
def test_a_failing_invocation_reports_the_error_like_sam_local_invoke(sam_build):
    kind, result, _ = run(sam_build, "PublishEventFunction", "sqs-usage.json", {"PublishEventFunction": {"NATS_URL": ""}})
    assert kind == "error" and result["errorType"] == "NatsSettingsError" and "NATS_URL" in result["errorMessage"]


def test_invoke_command_line_needs_a_build(tmp_path):
    out = subprocess.run([sys.executable, "-m", "local.invoke", "CountTokensFunction", str(EVENTS / "schedule.json"),
                          "--build-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ})
    assert out.returncode == 2 and "run `make build`" in out.stderr
