"""`make demo`: sample inference logs through the whole pipeline, and what each customer is billed.

The functions run as built by `sam build`, each invoked as Lambda runs it (local/invoke.py:
the real runtime client against a loopback Runtime API): count_tokens against a moto server
(SQS, S3) -> publish_event -> a real nats-server -> lago_sync -> the Lago emulator on the ClickHouse
event store that Lago Cloud runs (read-time dedup on, usage a second late), seeded with a per-token
plan priced by model and token type and three customers; then reconcile checks the running totals
against Lago. A CloudWatch Logs batch is
delivered twice, S3 objects come in several layouts (an OpenTelemetry trace and LiteLLM proxy logs
among them), and a few records are bad. Prints per
customer the tokens by model and type and the amount Lago would invoice (from current_usage),
then every dead letter with its reason. Stops everything it started, even on failure.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from local import workload
from local.invoke import sam_build as build_with_sam

ROOT = Path(__file__).resolve().parent.parent
TIME = 1_732_646_400  # 2024-11-26T18:40:00Z
USAGE_DELAY_MS = 1000
# The sample logs are from November 2024: the ledger is told to keep them (the contract refuses events
# older than the ledger keeps, 62 days by default).
KEEP = {"NATS_STREAM_MAX_AGE_DAYS": "3650", "NATS_STREAM_REPLICAS": "1"}  # one local nats-server


def sample_cloudwatch_lines() -> list[str]:
    bedrock = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "accountId": "123456789012",
               "region": "us-east-1", "operation": "Converse",
               "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"}
    lines = []
    for i in range(6):
        lines.append(json.dumps({**bedrock, "timestamp": f"2024-11-26T18:4{i}:00Z", "requestId": f"5f2a7c3e-0b7d-4a45-9a53-00000000000{i}",
                                 "input": {"inputTokenCount": 100_000 + 10_000 * i, "cacheReadInputTokenCount": 50_000},
                                 "output": {"outputTokenCount": 20_000 + i},
                                 "requestMetadata": {"subscription_id": "sub_acme" if i % 2 else "sub_globex"}}))
    lines.append("2024-11-26T18:50:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t" + json.dumps(
        {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": TIME + 600,
         "model": "gpt-4o-2024-08-06", "user": "sub_initech",
         "usage": {"prompt_tokens": 200_600, "completion_tokens": 30_000, "prompt_tokens_details": {"cached_tokens": 192_000},
                   "completion_tokens_details": {"reasoning_tokens": 6_400}}}))
    lines.append("START RequestId: 8f1e2d3c-aaaa-bbbb-cccc-1234567890ab Version: $LATEST")
    lines.append('{"model": "gpt-4o", "usage": {"prompt_tokens": -5, "completion_tokens": 3}, "user": "sub_acme"}')
    lines.append('{"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "model": "claude-3-5-sonnet-20241022", "usage": {"input_tokens": 21, "output_tokens": 393}}')
    return lines


def sample_s3_objects() -> dict[str, bytes]:
    ollama = [{"model": "llama3.1:8b", "created_at": f"2024-11-26T19:0{i}:00.123456789Z", "done": True,
               "prompt_eval_count": 260_000 + i, "eval_count": 290_000 + i, "metadata": {"customer": "sub_globex"}} for i in range(3)]
    chunk = {"model": "llama3.1:8b", "created_at": "2024-11-26T19:00:00Z", "response": "The", "done": False}
    text = [{"model": "llama3.2:3b", "prompt": "Summarise: the meeting moved to Thursday.", "completion": "Meeting now Thursday.",
             "timestamp": TIME + 1200, "user": "sub_initech"},
            {"model": "mistral-7b", "prompt": "Hello", "completion": "Hi", "timestamp": TIME + 1300, "user": "sub_initech"}]
    jsonl = "\n".join(json.dumps(r) for r in [*ollama, chunk, *text]).encode()
    return {"gateway/2024/11/26/ollama.jsonl.gz": gzip.compress(jsonl), "gateway/2024/11/26/broken.jsonl": b'{"model": \n',
            "otel/2024/11/26/19/traces-0001.json.gz": gzip.compress(json.dumps(sample_trace()).encode()),
            "litellm/2024-11-26/call-1.json": json.dumps(sample_litellm()).encode(),
            "litellm/2024-11-26/call-2.json": json.dumps({**sample_litellm(), "id": "chatcmpl-failed-0002",
                                                          "status": "failure", "prompt_tokens": 0,
                                                          "completion_tokens": 0}).encode()}


def sample_trace() -> dict:
    """An agent run as the OpenTelemetry Collector's S3 exporter writes it: the agent span sums its two model
    calls (billed once each, the sum never); the second call is from an older instrumentation."""
    def span(span_id: str, name: str, end_s: int, **attributes: object) -> dict:
        return {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": span_id, "name": name,
                "parentSpanId": "" if span_id == "00f067aa0ba902b7" else "00f067aa0ba902b7",
                "startTimeUnixNano": str((TIME + end_s - 2) * 10**9), "endTimeUnixNano": str((TIME + end_s) * 10**9),
                "attributes": [workload.otel_attribute(k, v) for k, v in attributes.items()]}

    model = "gpt-4o-mini-2024-07-18"
    spans = [
        span("00f067aa0ba902b7", "invoke_agent planner", 1500, **{"gen_ai.operation.name": "invoke_agent",
             "gen_ai.usage.input_tokens": 150_000, "gen_ai.usage.output_tokens": 13_000}),
        span("53995c3f42cd8ad8", f"chat {model}", 1480, **{"gen_ai.operation.name": "chat", "gen_ai.provider.name":
             "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": model,
             "gen_ai.usage.input_tokens": 120_000, "gen_ai.usage.cache_read.input_tokens": 40_000,
             "gen_ai.usage.output_tokens": 8_000}),
        span("d6a7b8c9e0f1a2b3", f"chat {model}", 1495, **{"gen_ai.system": "openai", "gen_ai.request.model": model,
             "gen_ai.usage.prompt_tokens": 30_000, "gen_ai.usage.completion_tokens": 5_000}),
    ]
    resource = [workload.otel_attribute("service.name", "planner"), workload.otel_attribute("user.id", "sub_globex")]
    return {"resourceSpans": [{"resource": {"attributes": resource},
                               "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                                               "spans": spans}]}]}


def sample_litellm() -> dict:
    """A LiteLLM proxy's StandardLoggingPayload, as its S3 logger writes one per call."""
    return {"id": "chatcmpl-7d3e5f1a-2b4c-4d6e-8f0a-1b2c3d4e5f60", "call_type": "acompletion", "status": "success",
            "cache_hit": False, "startTime": TIME + 1600.25, "endTime": TIME + 1601.5, "model": "gpt-4o-mini",
            "model_group": "gpt-4o-mini", "end_user": "sub_globex", "prompt_tokens": 50_000, "completion_tokens": 7_000,
            "total_tokens": 57_000, "metadata": {"user_api_key_team_id": "team-research"},
            "response": {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz999", "model": "gpt-4o-mini-2024-07-18",
                         "usage": {"prompt_tokens": 50_000, "completion_tokens": 7_000,
                                   "prompt_tokens_details": {"cached_tokens": 10_000},
                                   "completion_tokens_details": {"reasoning_tokens": 0}}}}


def cloudwatch_event(lines: list[str]) -> dict:
    return workload.cloudwatch_event([(f"{37_000_000_000 + i:056d}", (TIME + i) * 1000, m) for i, m in enumerate(lines)],
                                     stream="aws/bedrock/modelinvocations")


PRICES = {  # USD per token, by model and token type
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "input"): "0.0000008",
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "cached_input"): "0.00000008",
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "output"): "0.000004",
    ("gpt-4o-2024-08-06", "input"): "0.0000025",
    ("gpt-4o-2024-08-06", "cached_input"): "0.00000125",
    ("gpt-4o-2024-08-06", "output"): "0.00001",
    ("gpt-4o-2024-08-06", "reasoning"): "0.00001",
    ("gpt-4o-mini-2024-07-18", "input"): "0.00000015",
    ("gpt-4o-mini-2024-07-18", "cached_input"): "0.000000075",
    ("gpt-4o-mini-2024-07-18", "output"): "0.0000006",
    ("llama3.1:8b", "input"): "0.0000002",
    ("llama3.1:8b", "output"): "0.0000002",
    ("llama3.2:3b", "input"): "0.0000001",
    ("llama3.2:3b", "output"): "0.0000001",
}
CUSTOMERS = {"sub_acme": "acme", "sub_globex": "globex", "sub_initech": "initech"}


def seed_file(path: Path) -> Path:
    """Lago's per-token template: one sum metric on tokens, a price per model and token type."""
    models = sorted({m for m, _ in PRICES})
    types = ["input", "cached_input", "cache_write", "output", "reasoning"]
    path.write_text(json.dumps({
        "billable_metrics": [{"name": "LLM tokens", "code": "llm_tokens", "aggregation_type": "sum_agg",
                              "field_name": "tokens", "filters": [{"key": "model", "values": models},
                                                                  {"key": "token_type", "values": types}]}],
        "plans": [{"name": "Per token", "code": "per_token", "interval": "monthly", "amount_cents": 0,
                   "amount_currency": "USD", "charges": [{
                       "billable_metric_code": "llm_tokens", "charge_model": "standard",
                       "properties": {"amount": "0.0000001"},
                       "filters": [{"values": {"model": [m], "token_type": [t]}, "properties": {"amount": price}}
                                   for (m, t), price in PRICES.items()]}]}],
        "customers": [{"external_id": c, "name": c.title(), "currency": "USD"} for c in CUSTOMERS.values()],
        "subscriptions": [{"external_customer_id": c, "plan_code": "per_token", "external_id": s,
                           "subscription_at": "2024-01-01T00:00:00Z"} for s, c in CUSTOMERS.items()],
    }))
    return path


def main() -> int:
    from local.lago_emulator.process import LagoEmulatorProcess
    from local.moto_server import MotoServer
    from local.nats_server import NatsServer

    build = sam_build()
    letters: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tokenmeter-demo-") as tmp:
        servers = [MotoServer(), NatsServer(Path(tmp) / "jetstream"),
                   # Lago Cloud's event store: duplicates answered 200 and merged at read time, usage a little late.
                   LagoEmulatorProcess(Path(tmp) / "lago", api_key="demo-key", seed=seed_file(Path(tmp) / "seed.json"),
                                       now="2024-11-28T00:00:00Z", event_store="clickhouse", clickhouse_dedup=True,
                                       usage_delay_ms=USAGE_DELAY_MS)]
        moto, nats_server, lago = servers
        try:
            for server in servers:
                server.start()
            usage_messages, letters = _count_tokens(build, moto)
            records = [{"messageId": f"demo-{i}", "body": json.dumps(body), "eventSource": "aws:sqs"}
                       for i, body in enumerate(usage_messages)]
            response = _invoke(build, "PublishEventFunction", {"Records": records}, {"NATS_URL": nats_server.url, **KEEP})
            print(f"publish_event: {len(records)} SQS messages, failures: {response['batchItemFailures']}")
            scheduled = {"source": "aws.events", "detail-type": "Scheduled Event"}
            lago_env = {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                        "LAGO_API_KEY_SECRET_ARN": "", **KEEP}
            summary = _invoke(build, "LagoSyncFunction", scheduled, lago_env)
            print(f"lago_sync: shipped {summary['shipped']}, already billed {summary['already_billed']}")
            print(f"Lago (ClickHouse event store) shows usage {USAGE_DELAY_MS} ms after accepting it; waiting ...")
            time.sleep(USAGE_DELAY_MS / 1000 + 0.2)
            # The demo does not wait out the hour the template gives Lago to settle.
            checked = _invoke(build, "ReconcileFunction", scheduled, {**lago_env, "RECONCILE_SETTLE_SECONDS": "0"})
            print(f"reconcile: {checked['totals']['through']['ledger']} ledger events counted, "
                  f"{checked['reconciliation']['subscriptions']} subscriptions checked, "
                  f"drift {checked['reconciliation']['drifting']}")
            _print_invoices(lago)
        finally:
            for server in reversed(servers):
                server.stop()
    print("\nDead letters (a bad record delivered twice is dead-lettered twice, under the same id):")
    copies = Counter(d["id"] for d in letters)
    for letter in sorted({d["id"]: d for d in letters}.values(), key=lambda d: (d["reason"], d["source"])):
        count = copies[letter["id"]]
        print(f"  {letter['reason']:16} {letter['source']}{f'  (x{count})' if count > 1 else ''}\n"
              f"  {'':16} {letter['detail']}")
    return 0


def sam_build() -> Path:
    """The functions and layers as `sam build` makes them (cached: unchanged parts are not rebuilt)."""
    build = ROOT / ".aws-sam" / "build"
    print("sam build (no Docker) ...", flush=True)
    result = build_with_sam(build, cached=True)
    if result.returncode != 0:
        raise SystemExit(f"sam build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return build


def _invoke(build: Path, function: str, event: dict, environment: dict[str, str]) -> dict:
    from local.invoke import invoke

    kind, result, logs = invoke(build, function, json.dumps(event).encode(), {function: environment})
    if kind != "response":
        raise SystemExit(f"{function} {kind}: {result}\n{logs[-3000:]}")
    return result


def _count_tokens(build: Path, moto) -> tuple[list[dict], list[dict]]:
    """Sample logs through the built count_tokens; the UsageQueue's messages and the dead letters."""
    sqs, s3 = moto.client("sqs"), moto.client("s3")
    usage_url = sqs.create_queue(QueueName="usage")["QueueUrl"]
    dead_url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    s3.create_bucket(Bucket="inference-logs")
    environment = {**moto.environment(), "USAGE_QUEUE_URL": usage_url, "DEAD_LETTER_QUEUE_URL": dead_url}
    event = cloudwatch_event(sample_cloudwatch_lines())
    for delivery in (1, 2):  # CloudWatch Logs delivers at least once: the second copy must not bill again
        summary = _invoke(build, "CountTokensFunction", event, environment)
        print(f"count_tokens, CloudWatch batch, delivery {delivery}: {summary}")
    objects = sample_s3_objects()
    for key, body in objects.items():
        s3.put_object(Bucket="inference-logs", Key=key, Body=body)
    records = [{"s3": {"bucket": {"name": "inference-logs"}, "object": {"key": key}}} for key in objects]
    print(f"count_tokens, S3 objects: {_invoke(build, 'CountTokensFunction', {'Records': records}, environment)}")
    return _drain(sqs, usage_url), _drain(sqs, dead_url)


def _print_invoices(lago) -> None:
    from lago_python_client.client import Client

    client = Client(api_key=lago.api_key, api_url=lago.url)
    for subscription, customer in CUSTOMERS.items():
        usage = client.customers.current_usage(customer, subscription)
        print(f"\n{customer} ({subscription}), {usage.from_datetime[:10]} to {usage.to_datetime[:10]}")
        for charge in usage.charges_usage:
            for row in sorted(charge.filters, key=lambda f: sorted((f.values or {}).items())):
                if float(row.units) == 0:
                    continue
                model, token_type = ((row.values or {}).get(k, ["(other)"])[0] for k in ("model", "token_type"))
                print(f"  {model:45} {token_type:13} {int(float(row.units)):>10,} tokens  ${row.amount_cents / 100:>8.2f}")
        print(f"  {'invoice total':59} {'':>17}${usage.total_amount_cents / 100:>8.2f} {usage.currency}")


def _drain(sqs, url: str) -> list[dict]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


if __name__ == "__main__":
    sys.exit(main())
