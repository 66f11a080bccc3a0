"""The least any reader of count_tokens_bench's counted records must do, and nothing more: the ceiling of the
issue 17 target's ratio on this workload for a reader in Python that parses with orjson, as count_tokens does.

Each CloudWatch payload decoded, each line parsed, its four shapes (Bedrock, OpenAI chat, Anthropic, Ollama) told by
one key, the counts taken and split as the design's token types want, the subscription read from the place the
workload puts it, the time parsed, the identity hashed as count_tokens hashes it, and the inference handed over as
count_tokens hands it to its sink, or its events written as the JSON the SQS outbox sends. Nothing is checked
(types, ranges, unknown keys, identifiers), nothing is counted for a summary, no record can fail: a record of any
other shape raises. count_tokens does all of this and those checks.
"""

from __future__ import annotations

import base64
import functools
import zlib
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

import orjson

_EMPTY = blake2b(digest_size=16)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@functools.lru_cache(maxsize=4_096)  # as count_tokens keeps them: Bedrock's whole-second times repeat in a batch
def _ms(text: str) -> int:
    return (datetime.fromisoformat(text) - _EPOCH) // _MS


def least_read(events: list[dict[str, Any]], as_json: bool) -> list[Any]:
    """Each inference of ``events`` (CloudWatch triggers) as count_tokens hands it over: (key, subscription, time,
    model, counts) as the counted row's sink gets it, or with ``as_json`` its events' JSON, as the outbox sends it."""
    out: list[Any] = []
    for event in events:
        payload = orjson.loads(zlib.decompress(base64.b64decode(event["awslogs"]["data"]), wbits=31))
        for log_event in payload["logEvents"]:
            message = log_event["message"]
            data = orjson.loads(message[message.find("{"):])
            request_id = data.get("requestId") or data.get("id")
            if "schemaType" in data:
                inputs, outputs = data["input"], data["output"]
                counts = {"input": inputs["inputTokenCount"], "cached_input": inputs.get("cacheReadInputTokenCount", 0),
                          "output": outputs["outputTokenCount"]}
                model, subscription = data["modelId"], data["requestMetadata"]["subscription_id"]
                at = _ms(data["timestamp"])
            elif "usage" in data and "prompt_tokens" in data["usage"]:
                usage = data["usage"]
                cached = usage["prompt_tokens_details"]["cached_tokens"]
                reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
                counts = {"input": usage["prompt_tokens"] - cached, "cached_input": cached,
                          "output": usage["completion_tokens"] - reasoning, "reasoning": reasoning}
                model, subscription, at = data["model"], data["user"], data["created"] * 1000
            elif "usage" in data:
                usage = data["usage"]
                counts = {"input": usage["input_tokens"], "cached_input": usage["cache_read_input_tokens"],
                          "cache_write": usage["cache_creation_input_tokens"], "output": usage["output_tokens"]}
                model, subscription, at = data["model"], data["metadata"]["customer"], log_event["timestamp"]
            else:
                counts = {"input": data["prompt_eval_count"], "output": data["eval_count"]}
                model, subscription = data["model"], data["metadata"]["customer"]
                at = _ms(data["created_at"])
            # record_key's hash and format_timestamp's digits, written out: a call each is no part of the least work.
            digest = _EMPTY.copy()
            digest.update((f"req:{request_id}|{model}" if request_id else "cwl:" + log_event["id"]).encode())
            key, digits = digest.hexdigest(), str(at)
            timestamp = f"{digits[:-3]}.{digits[-3:]}"
            if not as_json:
                out.append((key, subscription, timestamp, model, {kind: n for kind, n in counts.items() if n}))
                continue
            head = f'","external_subscription_id":"{subscription}","code":"llm_tokens","timestamp":"{timestamp}"'
            out.append(",".join([f'{{"transaction_id":"{key}-{kind}{head},"properties":{{"tokens":{tokens},'
                                 f'"model":"{model}","token_type":"{kind}"}}}}' for kind, tokens in counts.items() if tokens]))
    return out


def bills(read: list[Any]) -> list[tuple[str, str, str, int]]:
    """(subscription, time, token type, tokens) of every event in what ``least_read`` gave, either way, sorted: what
    count_tokens must bill for the same records (the identity and the model's name aside)."""
    found = []
    for item in read:
        if isinstance(item, tuple):
            _, subscription, timestamp, _, counts = item
            found += [(subscription, timestamp, kind, tokens) for kind, tokens in counts.items()]
        elif item:
            found += [(event["external_subscription_id"], event["timestamp"], event["properties"]["token_type"],
                       event["properties"]["tokens"]) for event in orjson.loads(f"[{item}]")]
    return sorted(found)
