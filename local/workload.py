"""A generated inference-log workload and its ground truth, for the end-to-end tests and benchmark.

Ten record formats (Bedrock, OpenAI chat and OpenAI streamed chunks in CloudWatch Logs batches;
Anthropic, OpenAI Responses, Ollama, text-only, LiteLLM proxy payloads, Vertex AI Gemini responses and
OpenTelemetry traces in S3 objects, some gzipped), 50 subscriptions, several models, cached, cache-write,
reasoning and audio tokens, and a known set of deliberately bad records. The truth is
worked out here from the numbers the generator chose, never by the code under test; text-only
records are counted by a tokenizer the caller passes in (the tests pass tiktoken).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

PERIOD_START = 1_793_491_200  # 2026-11-01T00:00:00Z
PERIOD_SPAN = 14 * 86_400  # records fall in the first two weeks of November 2026
GHOST = "sub_ghost"  # a subscription Lago does not know: its usage must be dead-lettered, never billed
TOKEN_TYPES = ["input", "cached_input", "cache_write", "output", "reasoning", "input_audio"]
BAD_MARKER = re.compile(r"bad-\d+")
WORDS = ["the", "meeting", "moved", "to", "thursday", "please", "summarise", "these", "notes", "about", "tokens", "billing", "and", "latency"]

TextCounter = Callable[[str], int]


# Ids as customers write them: Lago's routes need each of these characters percent-encoded, and NATS
# subjects must not let them reach another subscription's subject.
AWKWARD = ["acme/eu west", "team.alpha", "what?now", "hash#tag", "50%off", "ünïcødé-客户"]


@dataclass
class Workload:
    cloudwatch: list[list[tuple[str, int, str]]]  # batches of (log event id, timestamp ms, message)
    s3_objects: dict[str, bytes]
    truth: Counter = field(default_factory=Counter)  # (subscription, model, token type) -> tokens
    events: int = 0  # distinct usage events that must reach Lago
    bad: dict[str, str] = field(default_factory=dict)  # marker -> dead-letter reason
    ghost_tokens: int = 0
    ghost_events: int = 0
    records: int = 0
    # Every usage event the workload must produce: (subscription, model, token type, tokens, timestamp ms).
    usages: list[tuple[str, str, str, int, int]] = field(default_factory=list)


def subscriptions(count: int = 50) -> list[str]:
    """Subscription ids; one in eight plain, the others with a character Lago's paths or NATS subjects refuse."""
    return [f"{AWKWARD[i % 8]} {i:03d}" if i % 8 < len(AWKWARD) else f"sub_{i:03d}" for i in range(count)]


def customer_of(subscription: str) -> str:
    return f"cust {subscription}"


def weekly_tokyo(subscription: str) -> bool:
    """Every fifth subscription is on the weekly plan, billed on its anniversary, for a customer in Tokyo."""
    return int(subscription[-3:]) % 5 == 4


def generate(n: int, count_prompt: TextCounter, count_completion: TextCounter, seed: int = 7,
             subscription_count: int = 50, text_share: float = 0.02, bad_every: int = 97,
             ghost_every: int = 211, batch: float = 1.0) -> Workload:
    """``n`` records; every ``bad_every``-th is a bad one and every ``ghost_every``-th bills the ghost
    subscription (0: none). ``batch`` scales how many records a CloudWatch batch or an S3 object holds
    (1: about 40 records per trigger over all formats)."""
    def per(size: int) -> int:
        return max(1, round(size * batch))

    rng = random.Random(seed)
    subs = subscriptions(subscription_count)
    work = Workload([], {})
    lines: list[str] = []
    objects: dict[str, list[str]] = {}
    for i in range(n):
        sub = GHOST if ghost_every and i % ghost_every == ghost_every // 2 else rng.choice(subs)
        ts = PERIOD_START + rng.randrange(PERIOD_SPAN)
        if bad_every and i % bad_every == bad_every - 1:
            kind, text = _bad(i, len(work.bad), rng, ts)
            work.bad[f"bad-{i}"] = kind
            (lines if kind in ("malformed_json", "unattributed", "invalid_timestamp") else
             objects.setdefault(f"gateway/bad/{i // per(500):04d}.jsonl", [])).append(text)
            continue
        roll = rng.random()
        if roll < text_share:
            record, counts, model = _text_only(i, rng, sub, ts, count_prompt, count_completion)
            objects.setdefault(f"gateway/text/{i // per(300):04d}.jsonl", []).append(record)
        elif roll < 0.30:
            record, counts, model = _bedrock(i, rng, sub, ts)
            lines.append(record)
        elif roll < 0.50:
            record, counts, model = _openai_chat(i, rng, sub, ts)
            lines.append(record if i % 3 else f"2026-11-01T00:00:00.000Z\t{i:08x}-aaaa\tINFO\t{record}")
        elif roll < 0.65:
            record, counts, model = _anthropic(i, rng, sub, ts)
            objects.setdefault(f"gateway/anthropic/{i // per(400):04d}.jsonl.gz", []).append(record)
        elif roll < 0.80:
            record, counts, model = _openai_responses(i, rng, sub, ts)
            objects.setdefault(f"gateway/responses/{i // per(400):04d}.jsonl", []).append(record)
        elif roll < 0.88:
            record, counts, model = _ollama(i, rng, sub, ts)
            folder = objects.setdefault(f"ollama/{i // per(400):04d}.jsonl.gz", [])
            folder.append(record)
            if i % 5 == 0:  # a streamed chunk before the final record: skipped, never billed
                folder.append(json.dumps({"model": model, "created_at": _rfc3339(ts), "response": "The", "done": False}))
        else:
            # The formats where one record holds several inferences, or several records one.
            if roll < 0.92:
                texts, inferences = _otlp_trace(i, rng, sub, ts)
                objects.setdefault(f"otel/{i // per(300):04d}.json" + (".gz" if i % 2 else ""), []).extend(texts)
            elif roll < 0.95:
                texts, inferences = _litellm(i, rng, sub, ts)
                objects.setdefault(f"litellm/{i // per(300):04d}.jsonl", []).extend(texts)
            elif roll < 0.97:
                texts, inferences = _gemini(i, rng, sub, ts)
                objects.setdefault(f"vertex/{i // per(300):04d}.jsonl.gz", []).extend(texts)
            else:
                texts, inferences = _openai_stream(i, rng, sub, ts)
                lines.extend(texts)  # a stream's chunks may straddle two CloudWatch batches
            work.records += len(texts)
            for counts, model, at_ms in inferences:
                _tally(work, sub, counts, model, at_ms)
            continue
        work.records += 1
        _tally(work, sub, counts, model, ts * 1000)
    work.records += len(work.bad)
    for start in range(0, len(lines), per(200)):
        work.cloudwatch.append([(f"{37_000_000 + start + j:056d}", (PERIOD_START + start + j) * 1000, line)
                                for j, line in enumerate(lines[start:start + per(200)])])
    for key, records in objects.items():
        body = "\n".join(records).encode()
        work.s3_objects[key] = gzip.compress(body) if key.endswith(".gz") else body
    return work


def _tally(work: Workload, sub: str, counts: dict[str, int], model: str, at_ms: int) -> None:
    for token_type, tokens in counts.items():
        if tokens:
            if sub == GHOST:
                work.ghost_tokens += tokens
                work.ghost_events += 1
            else:
                work.truth[(sub, model, token_type)] += tokens
                work.usages.append((sub, model, token_type, tokens, at_ms))
                work.events += 1


def cloudwatch_event(batch: list[tuple[str, int, str]], stream: str = "gateway") -> dict:
    """One CloudWatch Logs batch of (id, timestamp ms, message) as the subscription's Lambda trigger
    delivers it (base64 of gzip)."""
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/bedrock/modelinvocations",
               "logStream": stream, "subscriptionFilters": ["tokenmeter"],
               "logEvents": [{"id": i, "timestamp": ts, "message": m} for i, ts, m in batch]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def s3_event(bucket: str, key: str) -> dict:
    return {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


def queued_s3_event(bucket: str, keys: list[str]) -> dict:
    """The objects' notifications as the template delivers them: an SQS batch, a message per object (its id the
    key, so that a test can tell which message a batch failure names)."""
    return {"Records": [{"messageId": key, "body": json.dumps({**s3_event(bucket, key), "eventSource": "aws:s3"}),
                         "eventSource": "aws:sqs"} for key in keys]}


def lago_seed(models: list[str], subscription_count: int = 50, monthly_only: bool = False) -> dict:
    """Lago's per-token template for the workload: a price for every model x token type, on two plans (monthly
    by calendar for customers in UTC; weekly by anniversary, from Wednesday 2026-01-07, for customers in
    Asia/Tokyo; ``monthly_only``: everyone monthly, so all the workload's usage is billable), one customer
    (``cust <subscription>``) and subscription each; the emulator's ``--seed`` format. A seed names a charge's
    metric by code; the seeder sends its id, as Lago requires."""
    subs = subscriptions(subscription_count)

    def weekly(subscription: str) -> bool:
        return not monthly_only and weekly_tokyo(subscription)

    charges = [{"billable_metric_code": "llm_tokens", "charge_model": "standard", "properties": {"amount": "0"},
                "filters": [{"values": {"model": [m], "token_type": [t]}, "properties": {"amount": "0.000001"}}
                            for m in models for t in TOKEN_TYPES]}]
    return {
        "billable_metrics": [{"name": "LLM tokens", "code": "llm_tokens", "aggregation_type": "sum_agg",
                              "field_name": "tokens", "filters": [{"key": "model", "values": models},
                                                                  {"key": "token_type", "values": TOKEN_TYPES}]}],
        "plans": [{"name": "Per token", "code": "per_token", "interval": "monthly", "amount_cents": 0,
                   "amount_currency": "USD", "charges": charges},
                  {"name": "Per token, weekly", "code": "per_token_weekly", "interval": "weekly", "amount_cents": 0,
                   "amount_currency": "USD", "charges": charges}],
        "customers": [{"external_id": customer_of(s), "name": s, "currency": "USD",
                       "timezone": "Asia/Tokyo" if weekly(s) else "UTC"} for s in subs],
        "subscriptions": [
            {"external_customer_id": customer_of(s), "external_id": s, "plan_code": "per_token_weekly",
             "billing_time": "anniversary", "subscription_at": "2026-01-07T03:00:00Z"} if weekly(s) else
            {"external_customer_id": customer_of(s), "external_id": s, "plan_code": "per_token",
             "subscription_at": "2026-01-01T00:00:00Z"} for s in subs],
    }


def _split(rng: random.Random, total: int) -> int:
    return rng.choice([0, 0, rng.randint(0, total)])


def _bedrock(i: int, rng: random.Random, sub: str, ts: int) -> tuple[str, dict[str, int], str]:
    model = rng.choice(["anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-pro-v1:0"])
    model_id = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{model}" if i % 2 else model
    counts = {"input": rng.randint(1, 20_000), "cached_input": _split(rng, 50_000), "cache_write": _split(rng, 5_000),
              "output": rng.randint(0, 4_000)}
    record = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": _rfc3339(ts),
              "accountId": "123456789012", "region": "us-east-1", "requestId": f"{i:08x}-0b7d-4a45-9a53-2d7f3c8f9e10",
              "operation": "Converse", "modelId": model_id,
              "input": {"inputTokenCount": counts["input"], "cacheReadInputTokenCount": counts["cached_input"],
                        "cacheWriteInputTokenCount": counts["cache_write"]},
              "output": {"outputTokenCount": counts["output"]}, "requestMetadata": {"subscription_id": sub}}
    return json.dumps(record), counts, model


def _openai_chat(i: int, rng: random.Random, sub: str, ts: int) -> tuple[str, dict[str, int], str]:
    model = rng.choice(["gpt-4o-2024-08-06", "o3-mini-2025-01-31"])
    prompt, completion = rng.randint(1, 30_000), rng.randint(1, 8_000)
    cached, reasoning = _split(rng, prompt), _split(rng, completion) if model.startswith("o3") else 0
    record = {"id": f"chatcmpl-{i:024d}", "object": "chat.completion", "created": ts, "model": model, "user": sub,
              "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                        "prompt_tokens_details": {"cached_tokens": cached},
                        "completion_tokens_details": {"reasoning_tokens": reasoning}}}
    counts = {"input": prompt - cached, "cached_input": cached, "output": completion - reasoning, "reasoning": reasoning}
    return json.dumps(record), counts, model


def _openai_responses(i: int, rng: random.Random, sub: str, ts: int) -> tuple[str, dict[str, int], str]:
    model = "gpt-4.1-mini-2025-04-14"
    inp, out = rng.randint(1, 12_000), rng.randint(1, 3_000)
    cached, reasoning = _split(rng, inp), _split(rng, out)
    record = {"id": f"resp_{i:024d}", "object": "response", "created_at": ts, "model": model, "user": sub,
              "usage": {"input_tokens": inp, "output_tokens": out, "input_tokens_details": {"cached_tokens": cached},
                        "output_tokens_details": {"reasoning_tokens": reasoning}}}
    return json.dumps(record), {"input": inp - cached, "cached_input": cached, "output": out - reasoning,
                                "reasoning": reasoning}, model


def _anthropic(i: int, rng: random.Random, sub: str, ts: int) -> tuple[str, dict[str, int], str]:
    model = "claude-3-5-sonnet-20241022"
    counts = {"input": rng.randint(1, 9_000), "cached_input": _split(rng, 40_000), "cache_write": _split(rng, 3_000),
              "output": rng.randint(1, 2_000)}
    record = {"id": f"msg_{i:024d}", "type": "message", "role": "assistant", "model": model, "created_at": ts,
              "metadata": {"customer": sub},
              "usage": {"input_tokens": counts["input"], "cache_read_input_tokens": counts["cached_input"],
                        "cache_creation_input_tokens": counts["cache_write"], "output_tokens": counts["output"]}}
    return json.dumps(record), counts, model


def _ollama(i: int, rng: random.Random, sub: str, ts: int) -> tuple[str, dict[str, int], str]:
    model = "llama3.1:8b"
    counts = {"input": rng.randint(1, 4_000), "output": rng.randint(1, 1_500)}
    record = {"model": model, "created_at": _rfc3339(ts, nanos=f"{i:09d}"), "done": True, "done_reason": "stop",
              "prompt_eval_count": counts["input"], "eval_count": counts["output"], "metadata": {"customer": sub}}
    return json.dumps(record), counts, model


def _text_only(i: int, rng: random.Random, sub: str, ts: int, count_prompt: TextCounter,
               count_completion: TextCounter) -> tuple[str, dict[str, int], str]:
    model = "llama3.2:3b"
    prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + f" #{i}"
    completion = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
    record = {"id": f"gen-{i:012d}", "model": model, "prompt": prompt, "completion": completion, "timestamp": ts,
              "user": sub}
    return json.dumps(record), {"input": count_prompt(prompt), "output": count_completion(completion)}, model


def otel_attribute(key: str, value: object) -> dict:
    """An OpenTelemetry attribute as OTLP JSON writes it (int64 as a string)."""
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _otlp_trace(i: int, rng: random.Random, sub: str, ts: int) -> tuple[list[str], list[tuple[dict, str, int]]]:
    """One agent run as the Collector's S3 exporter writes it: an agent span summing one to three model
    calls (cache reads inside their input tokens, as the conventions say), a tool call and an HTTP span."""
    trace, agent = f"{i:032x}", f"{i:08x}a0000000"
    spans, inferences, total_in, total_out = [], [], 0, 0
    end_ms = ts * 1000 + rng.randrange(1000)
    for k in range(rng.randint(1, 3)):
        model = rng.choice(["gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022"])
        inp, out = rng.randint(1, 9_000), rng.randint(1, 2_000)
        cached = _split(rng, inp)
        total_in, total_out = total_in + inp, total_out + out
        call_end = end_ms - 100 * (3 - k)
        names = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens") if k % 2 == 0 else \
            ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")  # older instrumentations
        attributes = [otel_attribute("gen_ai.operation.name", "chat"), otel_attribute("gen_ai.request.model", model),
                      otel_attribute("gen_ai.response.model", model), otel_attribute(names[0], inp),
                      otel_attribute(names[1], out), otel_attribute("gen_ai.usage.cache_read.input_tokens", cached)]
        spans.append({"traceId": trace, "spanId": f"{i:08x}c{k:07d}", "parentSpanId": agent, "name": f"chat {model}",
                      "kind": 3, "startTimeUnixNano": str((call_end - 400) * 1_000_000),
                      "endTimeUnixNano": str(call_end * 1_000_000 + 123), "attributes": attributes})
        inferences.append(({"input": inp - cached, "cached_input": cached, "output": out}, model, call_end))
    spans.append({"traceId": trace, "spanId": f"{i:08x}d0000000", "parentSpanId": agent, "name": "execute_tool search",
                  "startTimeUnixNano": str(end_ms * 1_000_000 - 50), "endTimeUnixNano": str(end_ms * 1_000_000),
                  "attributes": [otel_attribute("gen_ai.operation.name", "execute_tool")]})
    spans.append({"traceId": trace, "spanId": f"{i:08x}e0000000", "parentSpanId": agent, "name": "GET /search",
                  "startTimeUnixNano": str(end_ms * 1_000_000 - 40), "endTimeUnixNano": str(end_ms * 1_000_000),
                  "attributes": [otel_attribute("http.request.method", "GET")]})
    spans.insert(0, {"traceId": trace, "spanId": agent, "name": "invoke_agent helper",
                     "startTimeUnixNano": str((end_ms - 1000) * 1_000_000), "endTimeUnixNano": str(end_ms * 1_000_000),
                     "attributes": [otel_attribute("gen_ai.operation.name", "invoke_agent"),
                                    otel_attribute("gen_ai.usage.input_tokens", total_in),
                                    otel_attribute("gen_ai.usage.output_tokens", total_out)]})
    document = {"resourceSpans": [{"resource": {"attributes": [otel_attribute("service.name", "helper"),
                                                               otel_attribute("user.id", sub)]},
                                   "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                                                   "spans": spans}]}]}
    return [json.dumps(document)], inferences


def _litellm(i: int, rng: random.Random, sub: str, ts: int) -> tuple[list[str], list[tuple[dict, str, int]]]:
    """A LiteLLM proxy StandardLoggingPayload; one in six a failed call and one in six a proxy cache hit,
    which bill nothing by default."""
    model = "gpt-4o-2024-08-06"
    prompt, completion = rng.randint(1, 20_000), rng.randint(1, 3_000)
    cached, reasoning = _split(rng, prompt), _split(rng, completion)
    end = ts + rng.randrange(1000) / 1000
    status = "failure" if i % 6 == 1 else "success"
    payload = {"id": f"chatcmpl-{i:08x}-1637-4e50-91b9-2e6aa5c9ba40", "trace_id": f"{i:08x}-6a79", "call_type":
               "acompletion", "status": status, "cache_hit": i % 6 == 2, "startTime": end - 0.7, "endTime": end,
               "model": "gpt-4o", "model_group": "gpt-4o", "end_user": sub, "prompt_tokens": prompt,
               "completion_tokens": completion, "total_tokens": prompt + completion,
               "metadata": {"user_api_key_team_id": "team-1", "user_api_key_end_user_id": sub},
               "response": {"id": f"chatcmpl-{i:024d}", "model": model, "object": "chat.completion",
                            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                      "prompt_tokens_details": {"cached_tokens": cached},
                                      "completion_tokens_details": {"reasoning_tokens": reasoning}}}}
    if status == "failure" or payload["cache_hit"]:
        return [json.dumps(payload)], []
    counts = {"input": prompt - cached, "cached_input": cached, "output": completion - reasoning,
              "reasoning": reasoning}
    return [json.dumps(payload)], [(counts, model, round(end * 1000))]


def _gemini(i: int, rng: random.Random, sub: str, ts: int) -> tuple[list[str], list[tuple[dict, str, int]]]:
    """A Vertex AI generateContent response with thoughts, a cache and audio in the prompt."""
    model = "gemini-2.5-flash"
    text, audio = rng.randint(1, 8_000), rng.choice([0, rng.randint(1, 3_000)])
    cached = _split(rng, text)
    candidates, thoughts = rng.randint(1, 2_000), rng.choice([0, rng.randint(1, 4_000)])
    details = [{"modality": "TEXT", "tokenCount": text}] + ([{"modality": "AUDIO", "tokenCount": audio}] if audio else [])
    usage = {"promptTokenCount": text + audio, "cachedContentTokenCount": cached, "candidatesTokenCount": candidates,
             "thoughtsTokenCount": thoughts, "totalTokenCount": text + audio + candidates + thoughts,
             "promptTokensDetails": details, "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": cached}]}
    record = {"user": sub, "request": {"contents": [{"role": "user", "parts": [{"text": "..."}]}]},
              "response": {"modelVersion": model, "responseId": f"gem{i:021d}", "createTime": _rfc3339(ts),
                           "usageMetadata": usage}}
    counts = {"input": text - cached, "cached_input": cached, "input_audio": audio, "output": candidates,
              "reasoning": thoughts}
    return [json.dumps(record)], [(counts, model, ts * 1000)]


def _openai_stream(i: int, rng: random.Random, sub: str, ts: int) -> tuple[list[str], list[tuple[dict, str, int]]]:
    """A chat completion streamed with include_usage, a log line per chunk (the gateway adds the user)."""
    model = "gpt-4o-mini-2024-07-18"
    prompt, completion = rng.randint(1, 6_000), rng.randint(2, 900)
    cached = _split(rng, prompt)
    base = {"id": f"chatcmpl-{i:020d}stream", "object": "chat.completion.chunk", "created": ts, "model": model,
            "user": sub, "usage": None}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
               for w in ("Sure", ",", " here")]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                    "prompt_tokens_details": {"cached_tokens": cached}}})
    counts = {"input": prompt - cached, "cached_input": cached, "output": completion}
    return [json.dumps(chunk) for chunk in chunks], [(counts, model, ts * 1000)]


def _bad(i: int, ordinal: int, rng: random.Random, ts: int) -> tuple[str, str]:
    """One deliberately bad record, its marker inside it, and the reason it must be dead-lettered with."""
    marker, sub = f"bad-{i}", rng.choice(subscriptions())
    kinds = {
        "malformed_json": f"{marker}: upstream gateway timeout, no JSON here",
        "unattributed": json.dumps({"id": marker, "object": "chat.completion", "created": ts, "model": "gpt-4o",
                                    "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        "invalid_timestamp": json.dumps({"schemaType": "ModelInvocationLog", "timestamp": "last tuesday",
                                         "requestId": marker, "modelId": "amazon.nova-pro-v1:0",
                                         "input": {"inputTokenCount": 5}, "output": {"outputTokenCount": 1},
                                         "requestMetadata": {"subscription_id": sub}}),
        "invalid_counts": json.dumps({"id": marker, "created": ts, "model": "gpt-4o", "user": sub,
                                      "usage": {"prompt_tokens": -5, "completion_tokens": 3}}),
        "unknown_format": json.dumps({"marker": marker, "level": "info", "msg": "healthcheck ok"}),
        "no_tokenizer": json.dumps({"id": marker, "model": "mistral-7b", "prompt": "Hello", "completion": "Hi",
                                    "timestamp": ts, "user": sub}),
    }
    kind = list(kinds)[ordinal % len(kinds)]
    return kind, kinds[kind]


def _rfc3339(ts: int, nanos: str = "") -> str:
    text = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos}Z" if nanos else f"{text}Z"
