"""Who pays, told by where a record was logged: a tenant's own log group, an S3 prefix per customer
(subscription_from rules on @logGroup, @logStream, @bucket and @key), through count_tokens against moto, and
through `tokenmeter replay` from the dead letters of records no rule attributed yet."""

import json
import os

import pytest
from conftest import LambdaContext, cloudwatch_event, drain, s3_event

from tokenmeter.core import MeteringConfigError, parse_config
from tokenmeter.metering.origins import record_origin
from tokenmeter.metering.records import RawRecord

BEDROCK = {  # no requestMetadata: nothing in the record says who pays
    "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2024-11-26T18:40:00Z",
    "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "operation": "Converse",
    "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
    "input": {"inputTokenCount": 100}, "output": {"outputTokenCount": 20}}
GEMINI = {"candidates": [], "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 7, "totalTokenCount": 37},
          "modelVersion": "gemini-2.0-flash", "responseId": "mX9bZ4-9Ba6O2PgPp7fI4Qo"}
OLLAMA = {"model": "llama3.1:8b", "created_at": "2024-11-26T18:41:00Z", "done": True, "prompt_eval_count": 26,
          "eval_count": 290}


def use_rules(monkeypatch, *rules) -> None:
    config = json.loads(os.environ["METERING_CONFIG"])
    monkeypatch.setenv("METERING_CONFIG", json.dumps({**config, "subscription_from": list(rules)}))


def billed(aws) -> dict[tuple[str, str], int]:
    """Tokens sent to the usage queue, by subscription and token type."""
    totals: dict[tuple[str, str], int] = {}
    for body in drain(aws.sqs, aws.usage_url):
        for e in body["events"]:
            key = (e["external_subscription_id"], e["properties"]["token_type"])
            totals[key] = totals.get(key, 0) + e["properties"]["tokens"]
    return totals


def test_a_tenants_log_group_says_who_pays(count_tokens, aws, monkeypatch):
    use_rules(monkeypatch, "user", {"path": "@logGroup", "pattern": "^/tenants/([^/]+)/"})
    lines = [json.dumps(BEDROCK), json.dumps(GEMINI), json.dumps({**OLLAMA, "user": "sub_named"})]
    summary = count_tokens.lambda_handler(cloudwatch_event(lines, group="/tenants/sub_acme/inference"), LambdaContext())
    assert summary["metered"] == 3 and summary["dead_letters"] == {}
    # The Bedrock record (read in one step) and the Gemini one (the general reading) by their log group; the
    # record that names its subscription keeps it, as the first rule says.
    assert billed(aws) == {("sub_acme", "input"): 130, ("sub_acme", "output"): 27,
                           ("sub_named", "input"): 26, ("sub_named", "output"): 290}


def test_an_s3_prefix_per_customer_says_who_pays(count_tokens, aws, monkeypatch):
    use_rules(monkeypatch, {"path": "@key", "pattern": "^tenants/([^/]+)/"}, {"path": "@bucket", "pattern": "^(.+)$"})
    body = "\n".join(json.dumps({**OLLAMA, "eval_count": n}) for n in (1, 2)) + "\n"
    aws.s3.put_object(Bucket="inference-logs", Key="tenants/sub_globex/2024/11/26/calls.jsonl", Body=body.encode())
    aws.s3.put_object(Bucket="inference-logs", Key="shared/calls.jsonl", Body=body.encode())
    count_tokens.lambda_handler(s3_event("tenants/sub_globex/2024/11/26/calls.jsonl"), LambdaContext())
    assert billed(aws) == {("sub_globex", "input"): 52, ("sub_globex", "output"): 3}
    count_tokens.lambda_handler(s3_event("shared/calls.jsonl"), LambdaContext())  # no tenant prefix: the bucket's
    assert billed(aws) == {("inference-logs", "input"): 52, ("inference-logs", "output"): 3}


def test_a_dead_letter_replayed_after_the_rule_is_added_is_attributed_by_its_origin(count_tokens, aws, capsys,
                                                                                    monkeypatch):
    from tokenmeter.cli.cli import main

    use_rules(monkeypatch, "user")
    key = "tenants/sub_initech/2024/11/26/calls.jsonl"
    aws.s3.put_object(Bucket="inference-logs", Key=key, Body=(json.dumps(OLLAMA) + "\n").encode())
    count_tokens.lambda_handler(s3_event(key), LambdaContext())
    count_tokens.lambda_handler(cloudwatch_event([json.dumps(BEDROCK)], group="/tenants/sub_acme/inference"),
                                LambdaContext())
    letters = drain(aws.sqs, aws.dead_url)
    assert [letter["reason"] for letter in letters] == ["unattributed", "unattributed"]
    for letter in letters:
        aws.sqs.send_message(QueueUrl=aws.dead_url, MessageBody=json.dumps(letter))
    use_rules(monkeypatch, "user", {"path": "@key", "pattern": "^tenants/([^/]+)/"},
              {"path": "@logGroup", "pattern": "^/tenants/([^/]+)/"})
    assert main(["replay", "records"]) == 0
    assert "metered 2" in capsys.readouterr().out
    assert billed(aws) == {("sub_initech", "input"): 26, ("sub_initech", "output"): 290,
                           ("sub_acme", "input"): 100, ("sub_acme", "output"): 20}


@pytest.mark.parametrize(("source", "origin", "fields"), [
    ("s3://logs/a/b.jsonl#line=3", "s3://logs/a/b.jsonl", {"@bucket": "logs", "@key": "a/b.jsonl"}),
    # Replayed from a dead letter: only the source is known.
    ("s3://logs/a/b.jsonl#line=3", None, {"@bucket": "logs", "@key": "a/b.jsonl"}),
    ("s3://logs/a/b.json[2]", None, {"@bucket": "logs", "@key": "a/b.json"}),
    ("s3://logs/a/b.json#line=4[2]", None, {"@bucket": "logs", "@key": "a/b.json"}),
    ("s3://logs/otel/x.json#span=5b8e/b2b2", None, {"@bucket": "logs", "@key": "otel/x.json"}),
    ("s3://logs/odd#name.json#line=1", None, {"@bucket": "logs", "@key": "odd#name.json"}),
    ("cloudwatch:/aws/bedrock:stream-1:3712", None, {"@logGroup": "/aws/bedrock", "@logStream": "stream-1"}),
    ("cloudwatch:/g:2024/11/26/[$LATEST]abc:/g:2024/11/26/[$LATEST]abc:4", None,
     {"@logGroup": "/g", "@logStream": "2024/11/26/[$LATEST]abc"}),
])
def test_a_records_origin_is_read_from_where_it_came_from(source, origin, fields):
    assert record_origin(RawRecord(source, "id", "", None, origin=origin)) == fields


@pytest.mark.parametrize("rule", ["@logGroupName", "@", {"path": "@region", "pattern": "x"}])
def test_an_origin_field_that_does_not_exist_is_a_clear_error(rule):
    with pytest.raises(MeteringConfigError, match="@logGroup, @logStream, @bucket, @key"):
        parse_config({"subscription_from": [rule]})
