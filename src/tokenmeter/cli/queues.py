"""Reading an SQS queue whole without losing anything: messages are held while we look, then either
deleted (done with) or released at once for the next reader."""

from __future__ import annotations

import json
from typing import Any

_HOLD_SECONDS = 120


def receive_all(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` messages, each once (SQS may hand one out twice: the copy is released)."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(seen)),
                                    VisibilityTimeout=_HOLD_SECONDS, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for message in batch:
            if message["MessageId"] in seen:
                seen[message["MessageId"]]["ReceiptHandle"] = message["ReceiptHandle"]
            else:
                seen[message["MessageId"]] = message
    return list(seen.values())


def release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start:start + 10])])


def delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        response = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages[start:start + 10])])
        if response.get("Failed"):
            raise RuntimeError(f"SQS did not delete {len(response['Failed'])} message(s) from {url}")


def body_json(message: dict[str, Any]) -> dict[str, Any]:
    """A message body that is a JSON object, or {} for anything else (nothing here trusts the queue)."""
    try:
        value = json.loads(message["Body"])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
