"""Hostile OpenTelemetry documents; LiteLLM, Gemini, batch result, log line, Realtime, vendor usage, Bedrock Converse,
Bedrock batch, Bedrock runtime, Cohere, Kong, APISIX, Replicate, AI SDK, Pydantic AI, LangChain, Langfuse,
LangSmith and Braintrust payloads; streamed chunks. Property-based: attribute values of every OTLP type (and of
none), missing usage, negative, fractional and string counts, huge arrays, parent cycles, chunks in any order. Nothing escapes the Meter, every
record (a span, a chunk) has exactly one outcome, and every event keeps the contract."""

from __future__ import annotations

import json
import re

from conftest import Collect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmeter.core import UsageEvent, parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=False),
                    st.integers(min_value=0, max_value=5000))
any_value = st.recursive(
    st.one_of(
        st.builds(lambda s: {"stringValue": s}, st.text(max_size=20) | st.sampled_from(["12", "-3", "1e3", " 7"])),
        st.builds(lambda n: {"intValue": n}, numbers.map(str) | numbers | st.text(max_size=5)),
        st.builds(lambda n: {"doubleValue": n}, numbers | st.text(max_size=5)),
        st.builds(lambda b: {"boolValue": b}, st.booleans() | st.integers()),
        st.builds(lambda b: {"bytesValue": b}, st.text(max_size=8)),
        st.just({}), st.none(), st.integers(), st.text(max_size=5),
    ),
    lambda children: st.builds(lambda xs: {"arrayValue": {"values": xs}}, st.lists(children, max_size=4))
    | st.builds(lambda kv: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kv.items()]}},
                st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=10,
)
USAGE_KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
              "gen_ai.usage.completion_tokens", "gen_ai.usage.cache_read.input_tokens",
              "gen_ai.usage.reasoning.output_tokens", "llm.usage.prompt_tokens", "llm.token_count.prompt",
              "llm.token_count.completion", "llm.token_count.prompt_details.cache_read"]
attribute_keys = st.sampled_from([*USAGE_KEYS, "gen_ai.operation.name", "gen_ai.request.model",
                                  "gen_ai.response.model", "user.id", "traceloop.span.kind", "openinference.span.kind",
                                  "llm.model_name", "embedding.model_name"]) | st.text(max_size=10)
attributes = st.lists(st.one_of(st.fixed_dictionaries({"key": attribute_keys, "value": any_value}),
                                st.integers(), st.text(max_size=5), st.fixed_dictionaries({"value": any_value})),
                      max_size=8)
ids = st.sampled_from(["a1", "b2", "c3", "d4"]) | st.text(max_size=4) | st.none() | st.integers()
span = st.fixed_dictionaries({"traceId": st.just("5b8efff798038103d269b633813fc60c") | ids, "spanId": ids},
                             optional={"parentSpanId": ids, "attributes": attributes | st.text(max_size=3),
                                       "endTimeUnixNano": numbers.map(str) | numbers | st.text(max_size=4),
                                       "startTimeUnixNano": numbers.map(str), "name": st.text(max_size=8)})
good_span = st.builds(
    lambda span_id, parent, inp, out, op: {
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "parentSpanId": parent,
        "endTimeUnixNano": "1794744000000000000",
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                       {"key": "gen_ai.operation.name", "value": {"stringValue": op}},
                       {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(inp)}},
                       {"key": "gen_ai.usage.output_tokens", "value": {"intValue": out}}]},
    st.sampled_from(["a1", "b2", "c3", "d4"]), st.sampled_from(["", "a1", "b2", "c3", "d4"]),
    st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from(["chat", "invoke_agent", "embeddings"]))
documents = st.builds(
    lambda groups, resource: {"resourceSpans": [
        {"resource": {"attributes": resource}, "scopeSpans": [{"spans": spans}]} for spans in groups]},
    st.lists(st.lists(span | good_span, max_size=6) | st.integers(), max_size=3),
    attributes | st.none(),
) | st.builds(lambda rs: {"resourceSpans": rs}, st.lists(st.integers() | st.text(max_size=3) | st.none(), max_size=3))

# A huge array attribute and a long chain of parents: bounded work, still one outcome per span.
HUGE = {"resourceSpans": [{"resource": {"attributes": [
    {"key": "tags", "value": {"arrayValue": {"values": [{"intValue": str(i)} for i in range(50_000)]}}}]},
    "scopeSpans": [{"spans": [
        {"traceId": "t" * 32, "spanId": f"s{i}", "parentSpanId": f"s{i - 1}" if i else f"s{1999}",
         "endTimeUnixNano": "1794744000000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1"}}]}
        for i in range(2000)]}]}]}

hostile = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10), st.lists(numbers, max_size=3),
                    st.dictionaries(st.text(max_size=5), numbers, max_size=3))
LITELLM = {"id": "chatcmpl-2299b6a3-1637-4e50-91b9-2e6aa5c9ba40", "call_type": "acompletion", "status": "success",
           "cache_hit": None, "endTime": 1794744000.5, "model": "gpt-4o", "end_user": "sub_1", "prompt_tokens": 100,
           "completion_tokens": 20, "response": {"model": "gpt-4o-2024-08-06", "usage": {
               "prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 40},
               "completion_tokens_details": {"reasoning_tokens": 5}}}}
GEMINI = {"user": "sub_2", "modelVersion": "gemini-2.5-flash", "responseId": "abc",
          "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 2,
                            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 3}]}}
BATCH = {"id": "batch_req_1", "custom_id": "sub_3:row-1", "error": None, "response": {
    "status_code": 200, "request_id": "req_1", "body": {"id": "chatcmpl-1", "model": "gpt-4o", "created": 1794744000,
                                                        "usage": {"prompt_tokens": 5, "completion_tokens": 2}}}}
MESSAGE_BATCH = {"custom_id": "sub_4:doc-1", "result": {"type": "succeeded", "message": {
    "id": "msg_1", "type": "message", "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}}}
results = st.sampled_from(["succeeded", "errored", "canceled", "expired"]) | hostile
LOG_LINE = {"level": "INFO", "timestamp": "2026-11-15 12:00:00,123+0000", "customer_id": "sub_5",
            "message": {"id": "chatcmpl-1", "model": "gpt-4o", "usage": {"prompt_tokens": 5, "completion_tokens": 2}}}
REALTIME = {"type": "response.done", "model": "gpt-realtime", "response": {"id": "resp_1", "usage": {
    "input_tokens": 20, "output_tokens": 9, "input_token_details": {"audio_tokens": 5, "cached_tokens": 4,
                                                                    "cached_tokens_details": {"audio_tokens": 1}},
    "output_token_details": {"audio_tokens": 6}}}}
# OpenAI-shaped usage as other servers write it (LiteLLM, OpenRouter, DeepSeek, xAI), a logged Bedrock Converse
# response, and Bedrock batch output lines.
VENDOR_USAGE = {"id": "chatcmpl-1", "model": "claude", "usage": {
    "prompt_tokens": 1510, "completion_tokens": 20, "total_tokens": 1530, "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 500, "prompt_cache_hit_tokens": 0,
    "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 500, "cache_write_tokens": 500},
    "completion_tokens_details": {"reasoning_tokens": 5}}}
CONVERSE = {"modelId": "amazon.nova-pro-v1:0", "usage": {"inputTokens": 3, "outputTokens": 2, "cacheReadInputTokens": 1},
            "ResponseMetadata": {"RequestId": "5ffd3a4e-2d5f-4a8b-9c1e-0123456789ab",
                                 "HTTPHeaders": {"date": "Thu, 28 Nov 2024 10:00:00 GMT"}}}
BEDROCK_BATCH = {"recordId": "CALL0000001", "modelInput": {"metadata": {"user_id": "sub_6"}},
                 "modelOutput": {"id": "msg_bdrk_1", "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}}
LANGCHAIN = {"type": "ai", "id": "run-1", "response_metadata": {"model_name": "gpt-4o", "id": "chatcmpl-1"},
             "usage_metadata": {"input_tokens": 12, "output_tokens": 9, "input_token_details": {"cache_read": 4},
                                "output_token_details": {"reasoning": 2}}}
GENAI_DUMP = {"candidates": [{"finish_reason": "STOP"}], "response_id": "r1", "model_version": "gemini-2.5-flash",
              "usage_metadata": {"prompt_token_count": 8, "candidates_token_count": 3, "thoughts_token_count": 2,
                                 "prompt_tokens_details": [{"modality": "AUDIO", "token_count": 2}]}}
payloads = st.one_of(
    st.dictionaries(st.sampled_from(["prompt_token_count", "candidates_token_count", "cached_content_token_count",
                                     "prompt_tokens_details", "cache_tokens_details"]), hostile, max_size=2)
    .map(lambda c: {**GENAI_DUMP, "usage_metadata": {**GENAI_DUMP["usage_metadata"], **c}}),
    st.dictionaries(st.sampled_from(["candidates", "model_version", "response_id", "create_time", "usage_metadata"]),
                    hostile, max_size=2).map(lambda c: {**GENAI_DUMP, **c}),
    st.dictionaries(st.sampled_from(["input_tokens", "output_tokens", "input_token_details", "output_token_details"]),
                    hostile, max_size=2)
    .map(lambda c: {**LANGCHAIN, "usage_metadata": {**LANGCHAIN["usage_metadata"], **c}}),
    st.dictionaries(st.sampled_from(["response_metadata", "usage_metadata", "lc", "kwargs", "llm_output", "token_usage",
                                     "model_name", "run"]), hostile, max_size=2).map(lambda c: {**LANGCHAIN, **c}),
    st.dictionaries(st.sampled_from(sorted(VENDOR_USAGE["usage"])), hostile | st.integers(0, 2000), max_size=4)
    .map(lambda c: {**VENDOR_USAGE, "usage": {**VENDOR_USAGE["usage"], **c}}),
    st.dictionaries(st.sampled_from(["cached_tokens", "cache_creation_tokens", "cache_write_tokens"]),
                    hostile | st.none(), max_size=3)
    .map(lambda c: {**VENDOR_USAGE, "usage": {**VENDOR_USAGE["usage"], "prompt_tokens_details": c}}),
    st.dictionaries(st.sampled_from(["modelId", "model", "usage", "ResponseMetadata"]), hostile, max_size=2)
    .map(lambda c: {**CONVERSE, **c}),
    st.dictionaries(st.sampled_from(["inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"]),
                    hostile, max_size=2).map(lambda c: {**CONVERSE, "usage": {**CONVERSE["usage"], **c}}),
    st.dictionaries(st.sampled_from(["modelOutput", "error", "modelInput", "recordId"]), hostile | st.none(),
                    max_size=2).map(lambda c: {**BEDROCK_BATCH, **c}),
    st.dictionaries(st.sampled_from(["input_tokens", "output_tokens", "input_token_details", "output_token_details"]),
                    hostile | st.fixed_dictionaries({}, optional={"audio_tokens": hostile, "cached_tokens": hostile,
                                                                  "cached_tokens_details": hostile}), max_size=2)
    .map(lambda c: {**REALTIME, "response": {"id": "resp_1", "usage": {**REALTIME["response"]["usage"], **c}}}),
    st.dictionaries(st.sampled_from(["model", "response"]), hostile, max_size=1).map(lambda c: {**REALTIME, **c}),
    st.dictionaries(st.sampled_from(["level", "message", "type", "record", "user", "usage"]),
                    hostile | st.just(json.dumps(LOG_LINE["message"])) | st.just("platform.start")
                    | st.just(LOG_LINE["message"]), max_size=3).map(lambda c: {**LOG_LINE, **c}),
    st.dictionaries(st.sampled_from(["status_code", "request_id", "body"]), hostile | st.just(None), max_size=2)
    .map(lambda c: {**BATCH, "response": {**BATCH["response"], **c}}),
    st.dictionaries(st.sampled_from(["response", "error", "custom_id"]), hostile | st.just(None), max_size=2)
    .map(lambda c: {**BATCH, **c}),
    st.dictionaries(st.sampled_from(["type", "message", "error"]), results, max_size=2)
    .map(lambda c: {**MESSAGE_BATCH, "result": {**MESSAGE_BATCH["result"], **c}}),
    st.dictionaries(st.sampled_from(["result", "custom_id"]), hostile, max_size=1).map(lambda c: {**MESSAGE_BATCH, **c}),
    st.dictionaries(st.sampled_from(sorted(LITELLM)), hostile, max_size=3).map(lambda c: {**LITELLM, **c}),
    st.dictionaries(st.sampled_from(["promptTokenCount", "cachedContentTokenCount", "candidatesTokenCount",
                                     "thoughtsTokenCount", "toolUsePromptTokenCount", "promptTokensDetails",
                                     "cacheTokensDetails", "candidatesTokensDetails"]),
                    hostile | st.lists(st.fixed_dictionaries({"modality": st.sampled_from(["AUDIO", "IMAGE", "TEXT"])
                                                              | hostile, "tokenCount": hostile}), max_size=3),
                    max_size=3).map(lambda c: {**GEMINI, "usageMetadata": {**GEMINI["usageMetadata"], **c}}),
)
# Bedrock's runtime answers and Cohere's, each with fields (top level or one level down) made hostile.
RUNTIME_ANSWERS = [
    {"generation": "x", "prompt_token_count": 5, "generation_token_count": 2, "stop_reason": "stop",
     "modelId": "meta.llama3-8b-instruct-v1:0"},
    {"inputTextTokenCount": 5, "results": [{"tokenCount": 3}], "modelId": "amazon.titan-text-lite-v1"},
    {"inputTextTokenCount": 5, "totalOutputTextTokenCount": 3, "completionReason": "FINISH", "modelId": "amazon.titan-text-lite-v1"},
    {"metadata": {"usage": {"inputTokens": 4, "outputTokens": 2, "cacheReadInputTokens": 1}}, "modelId": "us.amazon.nova-micro-v1:0"},
    {"outputs": [{"text": "", "stop_reason": "stop"}], "modelId": "mistral.mistral-small-2402-v1:0",
     "amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": 2}},
    {"usage": {"inputTokens": 4, "outputTokens": 2, "cacheReadInputTokenCount": 1}, "modelId": "amazon.nova-lite-v1:0"},
    {"id": "c-1", "model": "command-a-03-2025", "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 1},
                                                          "tokens": {"input_tokens": 30, "output_tokens": 1}}},
    {"type": "message-end", "model": "command-a-03-2025", "delta": {"usage": {"billed_units": {"input_tokens": 3}}}},
    {"event_type": "stream-end", "model": "command-r", "response": {"response_id": "r-1", "meta": {
        "billed_units": {"input_tokens": 3, "output_tokens": 1}}}},
    {"started_at": 1794744000123, "latencies": {"kong": 1, "proxy": 9, "request": 10},
     "request": {"id": "9ec9264afbbbad5fe5c64877d92eeb04"}, "response": {"status": 200},
     "ai": {"proxy": {"usage": {"prompt_tokens": 5, "completion_tokens": 2},
                      "meta": {"request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06"},
                      "payload": {"response": '{"usage": {"prompt_tokens": 5, "completion_tokens": 2}}'}}}},
    {"start_time": 1794744000123.0, "request": {"headers": {"x-request-id": "6f9c1b1e-8f0b-4c43"}},
     "response": {"status": 200, "body": '{"usage": {"prompt_tokens": 5, "completion_tokens": 2}}'},
     "llm_summary": {"model": "gpt-4o-mini", "request_model": "gpt-4o", "prompt_tokens": 5, "completion_tokens": 2}},
    {"usage": {"inputTokens": 160, "outputTokens": 20, "inputTokenDetails": {"cacheReadTokens": 50},
               "outputTokenDetails": {"reasoningTokens": 5}},
     "response": {"id": "msg_01", "modelId": "claude-sonnet-4-5", "timestamp": "2026-11-15T12:00:00.000Z"}},
    {"usage": {"inputTokens": 100, "outputTokens": 20, "cachedInputTokens": 50, "reasoningTokens": 3},
     "providerMetadata": {"anthropic": {"cacheCreationInputTokens": 30}}, "response": {"modelId": "claude"}},
    {"usage": {"input_tokens": 160, "cache_read_tokens": 50, "cache_write_tokens": 100, "output_tokens": 20,
               "input_audio_tokens": 0, "cache_audio_read_tokens": 0, "details": {"reasoning_tokens": 3}},
     "model_name": "claude", "provider_response_id": "msg_01", "timestamp": "2026-11-15T12:00:00Z", "kind": "response"},
    {"usage": {"promptTokens": 12, "completionTokens": 3}, "providerMetadata": {"openai": {"cachedPromptTokens": 2}},
     "model": "gpt-4o"},
    {"id": "gm3qorzdhgbfurvjtvhg6dckhu", "model": "meta/meta-llama-3-70b-instruct", "version": "fbfb20b4",
     "status": "succeeded", "completed_at": "2026-11-15T12:00:00.374183Z", "urls": {},
     "metrics": {"input_token_count": 8, "output_token_count": 43, "predict_time": 1.3}},
    {"object": "trace.span", "id": "span_9c8b7a6f5e4d3c2b1a098765", "trace_id": "trace_3f2a9c1e7b4d4e0f", "parent_id": None,
     "started_at": "2026-11-15T12:00:00.104211+00:00", "ended_at": "2026-11-15T12:00:02.519733+00:00", "error": None,
     "span_data": {"type": "generation", "model": "o4-mini", "usage": {
         "requests": 1, "input_tokens": 1200, "output_tokens": 300, "input_tokens_details": {"cached_tokens": 1000},
         "output_tokens_details": {"reasoning_tokens": 100}}}},
    {"type": "assistant", "sessionId": "c7f1c1e0", "uuid": "u2", "timestamp": "2026-11-15T12:00:02.000Z",
     "message": {"id": "msg_01HmyMaGAgdp6Zt6DBBURNBd", "type": "message", "model": "claude-sonnet-4-5",
                 "usage": {"input_tokens": 4, "cache_read_input_tokens": 12000, "output_tokens": 7}}},
    {"id": "5c8d2f9a1b3e4d70", "trace_id": "0af7651916cd43dd8448eb211c80319c", "project_id": "cm1", "type": "GENERATION",
     "parent_observation_id": "", "start_time": "2026-11-15 12:00:00.120000", "end_time": "2026-11-15 12:00:02.905000",
     "provided_model_name": "gpt-4o", "usage_details": {"input": "1200", "input_cached_tokens": "800", "output": "310",
                                                         "output_reasoning_tokens": "64", "total": "2374"}},
    {"id": "d2", "traceId": "1bf7", "type": "EMBEDDING", "startTime": "2026-11-15T12:00:00.120Z", "endTime": None,
     "model": "text-embedding-3-small", "usageDetails": {"input": 9, "total": 9}, "metadata": {"customer": "sub_1"}},
    {"id": "1bf7", "userId": "sub_1", "htmlPath": "/project/p/traces/1bf7", "observations": [
        {"id": "g1", "traceId": "1bf7", "type": "GENERATION", "startTime": "2026-11-15T12:00:00.120Z", "model": "gpt-4o",
         "usageDetails": {"input": 9, "output": 2}}]},
    {"id": "1f1a7c2e", "name": "ChatAnthropic", "run_type": "llm", "start_time": "2026-11-15T12:00:00.120000",
     "end_time": "2026-11-15T12:00:02.905000", "status": "success", "trace_id": "0c5e", "prompt_tokens": 1510,
     "completion_tokens": 20, "total_tokens": 1530, "extra": {"metadata": {"ls_model_name": "claude-sonnet-4-5"}},
     "prompt_token_details": {"cache_read": 1000, "cache_creation": 0, "ephemeral_1h_input_tokens": 500},
     "completion_token_details": {"reasoning": 0}},
    {"id": "2b", "run_type": "llm", "start_time": 1_795_169_702_120, "end_time": 1_795_169_704_905, "trace_id": "2b",
     "prompt_tokens": 9, "completion_tokens": 2, "extra": '{"invocation_params": {"model": "gpt-4o"}}'},
    {"id": "r1", "span_id": "0a1b", "root_span_id": "5b8e", "span_attributes": {"name": "Chat Completion", "type": "llm"},
     "metadata": {"model": "claude-sonnet-4-5"}, "metrics": {"start": 1795169702.12, "end": 1795169704.905,
                                                         "prompt_tokens": 1510, "completion_tokens": 20.0,
                                                         "prompt_cached_tokens": 1000,
                                                         "prompt_cache_creation_1h_tokens": 500}},
]


def _spoiled(answer: dict, changes: dict, nested: dict) -> dict:
    spoiled = {**answer, **changes}
    for key, inner in nested.items():
        if isinstance(spoiled.get(key), dict):
            spoiled[key] = {**spoiled[key], **inner}
    return spoiled


runtime_answers = st.sampled_from(RUNTIME_ANSWERS).flatmap(lambda answer: st.builds(
    _spoiled, st.just(answer), st.dictionaries(st.sampled_from(sorted(answer)), hostile, max_size=2),
    st.dictionaries(st.sampled_from(sorted(answer)), st.dictionaries(st.sampled_from(
        ["usage", "inputTokens", "billed_units", "input_tokens", "output_tokens", "inputTokenCount", "outputTokenCount",
         "meta", "tokenCount", "stop_reason", "proxy", "ai-proxy", "prompt_tokens", "completion_tokens", "model",
         "body", "headers", "input_token_count", "output_token_count", "id", "status", "inputTokenDetails",
         "cachedInputTokens", "promptTokens", "anthropic", "openai", "modelId", "timestamp", "cache_read_tokens",
         "input_audio_tokens", "details", "type", "input", "total", "input_cached_tokens", "metadata",
         "ls_model_name", "invocation_params", "cache_read", "cache_creation", "ephemeral_1h_input_tokens",
         "reasoning", "end", "prompt_cached_tokens", "prompt_cache_creation_1h_tokens", "prompt_cache_creation_tokens",
         "completion_reasoning_tokens"]), hostile, max_size=2),
        max_size=1)))
realtime_models = st.sampled_from(["gpt-realtime", "gpt-4o-transcribe"]) | hostile
chunks = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["session.created", "session.updated", "rate_limits.updated", "error"]),
                           "event_id": st.just("event_1") | hostile},
                          optional={"session": st.fixed_dictionaries({}, optional={
                              "model": realtime_models, "input_audio_transcription": st.fixed_dictionaries(
                                  {}, optional={"model": realtime_models}) | hostile,
                              "audio": st.fixed_dictionaries({}, optional={"input": st.fixed_dictionaries(
                                  {}, optional={"transcription": st.fixed_dictionaries({}, optional={
                                      "model": realtime_models}) | hostile}) | hostile}) | hostile}) | hostile}),
    st.fixed_dictionaries({"type": st.sampled_from(["response.done", "conversation.item.input_audio_transcription.completed"]),
                           "event_id": st.just("event_2")},
                          optional={"item_id": st.just("item_CCXGQ4e1ht4cOraEYcuR2") | hostile, "content_index": hostile,
                                    "usage": st.dictionaries(st.sampled_from(["type", "input_tokens", "output_tokens",
                                                                              "input_token_details"]), hostile) | hostile,
                                    "response": st.fixed_dictionaries({}, optional={
                                        "id": hostile, "usage": st.dictionaries(st.sampled_from(
                                            ["input_tokens", "output_tokens"]), hostile) | hostile}) | hostile}),
    st.fixed_dictionaries({"type": st.sampled_from(["message_start", "message_delta", "content_block_delta",
                                                    "message_stop", "ping"])},
                          optional={"message": st.fixed_dictionaries({}, optional={
                              "id": st.sampled_from(["msg_1", "msg_2"]) | hostile, "model": st.just("claude") | hostile,
                              "usage": st.dictionaries(st.sampled_from(["input_tokens", "output_tokens",
                                                                        "cache_read_input_tokens"]), hostile) | hostile})
                              | hostile,
                              "usage": st.dictionaries(st.sampled_from(["input_tokens", "output_tokens"]), hostile)
                              | hostile}),
    st.fixed_dictionaries({"object": st.just("chat.completion.chunk"), "id": st.sampled_from(["c1", "c2"]) | hostile,
                           "model": st.just("gpt-4o") | hostile, "created": st.just(1794744000) | hostile},
                          optional={"usage": st.none() | hostile, "x_groq": st.fixed_dictionaries(
                              {}, optional={"id": hostile, "usage": st.dictionaries(st.sampled_from(
                                  ["prompt_tokens", "completion_tokens", "queue_time"]), hostile) | hostile}) | hostile,
                                    "choices": st.lists(
                              st.fixed_dictionaries({}, optional={"index": hostile, "finish_reason": hostile,
                                                                  "delta": st.fixed_dictionaries({}, optional={
                                                                      "content": hostile, "role": hostile}) | hostile})
                              | hostile, max_size=2) | hostile}),
)




def meter(values, batches=1):
    """The values as one log stream's records, over ``batches`` invocations; returns (records, sink)."""
    config = parse_config({"default_subscription": "sub_default", "subscription_from": ["attributes.user.id"]})
    sink, records = Collect(), 0
    size = max(1, -(-len(values) // batches))
    for start in range(0, max(len(values), 1), size):
        m = Meter(config, TokenizerPool({}), sink)
        for i, value in enumerate(values[start:start + size], start):
            m.add(RawRecord(f"cloudwatch:g:s:{i}", f"cwl:{i}", json.dumps(value), 1_794_744_000_000 + i))
        summary = m.finish()
        assert all(n >= 0 for n in summary.skipped.values()), summary
        assert summary.records == summary.metered + sum(summary.dead_letters.values()) + sum(summary.skipped.values())
        records += summary.records
    assert all(letter.reason and letter.detail for letter in sink.dead_letters)
    for event in sink.events:
        UsageEvent.from_dict(json.loads(event.to_json()))
        assert type(event.properties["tokens"]) is int and 0 < event.properties["tokens"] <= 10**9
    by_id = {}
    for event in sink.events:  # an id seen twice (a chunk logged twice) always travels with the same event
        assert by_id.setdefault(event.transaction_id, event.as_dict()) == event.as_dict()
    return records, sink


@EXAMPLES
@given(documents)
def test_otlp_documents_only_ever_bill_or_explain(document):
    meter([document])


@EXAMPLES
@given(st.lists(good_span, min_size=1, max_size=6, unique_by=lambda s: s["spanId"]))
def test_no_span_is_billed_with_a_billed_span_below_it(spans):
    _, sink = meter([{"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}])
    # Worked out apart from the code: a span is billed when it is no agent and no span here names it parent.
    parents = {s["parentSpanId"] for s in spans}
    leaves = [s for s in spans if s["spanId"] not in parents and s["attributes"][1]["value"]["stringValue"] != "invoke_agent"]
    expected = sum(int(s["attributes"][2]["value"]["intValue"]) + s["attributes"][3]["value"]["intValue"] for s in leaves)
    assert sum(e.properties["tokens"] for e in sink.events) == expected


def test_a_huge_array_and_a_cycle_of_parents():
    records, sink = meter([HUGE])
    assert records == 2000 and sink.events == []  # every span has a parent with usage: all wrappers, none billed


@EXAMPLES
@given(payloads)
def test_litellm_gemini_batch_result_and_log_line_payloads_only_ever_bill_or_explain(payload):
    meter([payload])


@EXAMPLES
@given(runtime_answers)
def test_bedrock_runtime_cohere_gateway_and_replicate_answers_only_ever_bill_or_explain(answer):
    _, sink = meter([answer])
    # Each reader explains what it refuses: no letter is the meter's catch-all for a reader that crashed.
    assert not [letter for letter in sink.dead_letters if re.match(r"[A-Z]\w*(Error|Exception): ", letter.detail)]


@EXAMPLES
@given(st.lists(chunks, max_size=10), st.integers(1, 3))
def test_streamed_chunks_in_any_order_and_any_split(values, batches):
    meter(values, batches)


python_like = st.text(alphabet=st.sampled_from(list("Usage(=input_tokens,)[]{}'\"0123456789-*.:_ xTrueNone\\")), max_size=120)


@EXAMPLES
@given(python_like, st.sampled_from(["Usage(", "{'", "[INFO] ChatCompletion(", ""]))
def test_any_python_looking_line_is_read_or_a_dead_letter_never_a_crash(body, start):
    records, sink = meter_text([start + body, start + body + ")", start + body + "}"])
    assert records == 3


def meter_text(lines):
    """Raw log lines (not JSON values) as one log stream's records; returns (records, sink)."""
    config = parse_config({"default_subscription": "sub_default"})
    sink = Collect()
    m = Meter(config, TokenizerPool({}), sink)
    for i, line in enumerate(lines):
        m.add(RawRecord(f"cloudwatch:g:s:{i}", f"cwl:{i}", line, 1_794_744_000_000 + i))
    summary = m.finish()
    assert summary.records == summary.metered + sum(summary.dead_letters.values()) + sum(summary.skipped.values())
    for event in sink.events:
        UsageEvent.from_dict(json.loads(event.to_json()))
    return summary.records, sink
