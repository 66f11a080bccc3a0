"""OpenTelemetry GenAI spans in OTLP JSON, as the Collector's S3 exporter writes them: one inference per
span that carries usage and is a model call, never the agent or wrapper spans that sum their children."""

import json

from conftest import Collect, meter_lines

from tokenmeter.core import parse_config, record_key
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

TRACE = "5b8efff798038103d269b633813fc60c"


def attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # int64 is a string in OTLP JSON
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(span_id, parent, name, end_ns, **attributes):
    return {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 3,
            "startTimeUnixNano": str(end_ns - 900_000_000), "endTimeUnixNano": str(end_ns),
            "attributes": [attr(k.replace("__", "."), v) for k, v in attributes.items()], "status": {}}


def document(*spans, resource=None):
    resource = resource or {"service.name": "support-bot", "tenant.id": "sub_acme"}
    return {"resourceSpans": [{"resource": {"attributes": [attr(k, v) for k, v in resource.items()]},
                               "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                                               "spans": list(spans)}]}]}


# An agent run: the agent span sums its two model calls; a tool call and an HTTP call carry no usage.
AGENT_TRACE = document(
    span("a1a1a1a1a1a1a1a1", "", "invoke_agent support", 1_732_646_402_000_000_000,
         gen_ai__operation__name="invoke_agent", gen_ai__agent__name="support",
         gen_ai__usage__input_tokens=300, gen_ai__usage__output_tokens=70),
    span("b2b2b2b2b2b2b2b2", "a1a1a1a1a1a1a1a1", "chat gpt-4o", 1_732_646_400_123_456_789,
         gen_ai__operation__name="chat", gen_ai__provider__name="openai", gen_ai__request__model="gpt-4o",
         gen_ai__response__model="gpt-4o-2024-08-06", gen_ai__usage__input_tokens=100,
         gen_ai__usage__output_tokens=30),
    span("c3c3c3c3c3c3c3c3", "a1a1a1a1a1a1a1a1", "execute_tool lookup", 1_732_646_401_000_000_000,
         gen_ai__operation__name="execute_tool", gen_ai__tool__name="lookup"),
    span("d4d4d4d4d4d4d4d4", "a1a1a1a1a1a1a1a1", "chat gpt-4o", 1_732_646_401_500_000_000,
         gen_ai__operation__name="chat", gen_ai__system="openai", gen_ai__request__model="gpt-4o",
         gen_ai__usage__input_tokens=200, gen_ai__usage__output_tokens=40,
         gen_ai__usage__cache_read__input_tokens=50, **{"user.id": "sub_override"}),
    span("e5e5e5e5e5e5e5e5", "a1a1a1a1a1a1a1a1", "GET", 1_732_646_401_600_000_000, http__request__method="GET"),
)




def meter(*docs, paths=("attributes.user.id", "resource.tenant.id"), key="otel/2024/11/26/a.json"):
    config = parse_config({"subscription_from": list(paths)})
    sink = Collect()
    m = Meter(config, TokenizerPool({}), sink)
    for i, doc in enumerate(docs):
        m.add(RawRecord(f"s3://logs/{key}", f"s3:logs/{key}@etag#{i}", json.dumps(doc), 1_732_646_500_000))
    return m.finish(), sink


def billed(sink):
    return {(e.external_subscription_id, e.properties["model"], e.properties["token_type"]): e.properties["tokens"]
            for e in sink.events}


def test_each_model_call_is_billed_once_and_the_agent_sum_is_not():
    summary, sink = meter(AGENT_TRACE)
    assert billed(sink) == {
        ("sub_acme", "gpt-4o-2024-08-06", "input"): 100, ("sub_acme", "gpt-4o-2024-08-06", "output"): 30,
        # 200 input tokens include the 50 read from the cache.
        ("sub_override", "gpt-4o", "input"): 150, ("sub_override", "gpt-4o", "cached_input"): 50,
        ("sub_override", "gpt-4o", "output"): 40,
    }
    assert summary.as_dict() == {"records": 5, "metered": 2, "events": 5, "dead_letters": {},
                                 "skipped": {"aggregate_span": 1, "no_usage": 1, "not_genai_span": 1}}


def test_identity_is_the_span_and_time_its_end():
    _, first = meter(AGENT_TRACE)
    _, again = meter(AGENT_TRACE, key="otel/2024/11/26/copy-of-a.json")  # the same spans exported twice
    assert {e.transaction_id for e in first.events} == {e.transaction_id for e in again.events}
    ids = {e.transaction_id for e in first.events}
    assert record_key(f"req:{TRACE}/b2b2b2b2b2b2b2b2|gpt-4o-2024-08-06") + "-input" in ids
    stamps = {e.properties["model"]: e.timestamp for e in first.events}
    assert stamps == {"gpt-4o-2024-08-06": "1732646400.123", "gpt-4o": "1732646401.500"}


def test_a_span_with_the_providers_response_id_bills_as_the_same_call_logged_by_the_app():
    # The instrumentation recorded the response id (gen_ai.response.id); the app also logged the response.
    response_id = "chatcmpl-AS1f2c3d4e5f6a7b8c9d0e1f2a3b"
    traced = document(span("f6f6f6f6f6f6f6f6", "", "chat gpt-4o", 1_732_646_400_000_000_000,
                           gen_ai__operation__name="chat", gen_ai__request__model="gpt-4o",
                           gen_ai__response__model="gpt-4o-2024-08-06", gen_ai__response__id=response_id,
                           gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=30))
    logged = {"id": response_id, "object": "chat.completion", "created": 1732646400, "model": "gpt-4o-2024-08-06",
              "user": "sub_acme",
              "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130}}
    _, from_span = meter(traced)
    _, from_log = meter(logged, paths=("resource.tenant.id", "user"), key="app/2024/11/26/b.jsonl")
    assert {e.transaction_id for e in from_span.events} == {e.transaction_id for e in from_log.events} == {
        record_key(f"req:{response_id}|gpt-4o-2024-08-06") + "-input",
        record_key(f"req:{response_id}|gpt-4o-2024-08-06") + "-output"}


def test_older_attribute_names_and_a_wrapper_with_usage_around_a_model_call():
    # A framework span (no operation name) reports its child's usage again: only the child is billed.
    doc = document(
        span("1111111111111111", "", "ChatOpenAI.chat", 1_732_646_400_000_000_000, gen_ai__request__model="gpt-4o",
             gen_ai__usage__prompt_tokens=12, gen_ai__usage__completion_tokens=3),
        span("2222222222222222", "1111111111111111", "openai.chat", 1_732_646_400_000_000_000,
             gen_ai__system="openai", gen_ai__request__model="gpt-4o", gen_ai__response__model="gpt-4o",
             gen_ai__usage__prompt_tokens=12, gen_ai__usage__completion_tokens=3),
        span("3333333333333333", "", "anthropic.chat", 1_732_646_400_000_000_000, gen_ai__system="anthropic",
             gen_ai__request__model="claude-3-5-haiku", llm__usage__prompt_tokens=40, llm__usage__completion_tokens=9,
             gen_ai__usage__cache_creation_input_tokens=25, gen_ai__usage__cache_read_input_tokens=30),
    )
    summary, sink = meter(doc)
    assert billed(sink) == {
        ("sub_acme", "gpt-4o", "input"): 12, ("sub_acme", "gpt-4o", "output"): 3,
        # 25 + 30 cached fit inside 40? No: 55 > 40, so this instrumentation reported them beside the input.
        ("sub_acme", "claude-3-5-haiku", "input"): 40, ("sub_acme", "claude-3-5-haiku", "cache_write"): 25,
        ("sub_acme", "claude-3-5-haiku", "cached_input"): 30, ("sub_acme", "claude-3-5-haiku", "output"): 9,
    }
    assert summary.skipped == {"aggregate_span": 1}


def test_span_ids_are_per_trace():
    # Two traces in one export reuse a span id: trace A's model call (child of its "1111...") must not make
    # trace B's span "1111..." (a model call with no children) look like a wrapper.
    wrapper, call = AGENT_TRACE["resourceSpans"][0]["scopeSpans"][0]["spans"][:2]
    other = {**span("a1a1a1a1a1a1a1a1", "", "chat gpt-4o", 1_732_646_403_000_000_000, gen_ai__request__model="gpt-4o",
                    gen_ai__usage__input_tokens=7, gen_ai__usage__output_tokens=2), "traceId": "f" * 32}
    summary, sink = meter(document(wrapper, call, other))
    assert billed(sink) == {("sub_acme", "gpt-4o-2024-08-06", "input"): 100,
                            ("sub_acme", "gpt-4o-2024-08-06", "output"): 30,
                            ("sub_acme", "gpt-4o", "input"): 7, ("sub_acme", "gpt-4o", "output"): 2}
    assert summary.skipped == {"aggregate_span": 1}


def test_reasoning_inside_output_and_double_and_int_typed_counts():
    doc = document(span("9999999999999999", "", "chat o3", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                        gen_ai__request__model="o3", gen_ai__usage__input_tokens=10.0,
                        gen_ai__usage__output_tokens=500, gen_ai__usage__reasoning__output_tokens=420))
    _, sink = meter(doc)
    assert billed(sink) == {("sub_acme", "o3", "input"): 10, ("sub_acme", "o3", "output"): 80,
                            ("sub_acme", "o3", "reasoning"): 420}


def test_bad_spans_are_dead_lettered_one_by_one():
    good = span("8888888888888888", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=5, gen_ai__usage__output_tokens=1)
    fractional = span("7777777777777777", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                      gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=5.5)
    negative = span("6666666666666666", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                    gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=-1)
    no_model = span("5555555555555555", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                    gen_ai__usage__input_tokens=3)
    summary, sink = meter(document(good, fractional, negative, no_model, {"spanId": "x"}))
    assert billed(sink) == {("sub_acme", "gpt-4o", "input"): 5, ("sub_acme", "gpt-4o", "output"): 1}
    assert summary.dead_letters == {"invalid_counts": 2, "invalid_record": 2}
    assert summary.records == 5
    assert {letter.source.rsplit("#span=", 1)[1] for letter in sink.dead_letters} >= {
        f"{TRACE}/7777777777777777", f"{TRACE}/6666666666666666"}


def test_unattributed_span_and_an_empty_document():
    summary, sink = meter(AGENT_TRACE, document(), paths=("attributes.customer",))
    assert sink.events == [] and summary.dead_letters == {"unattributed": 2}
    assert summary.skipped["no_spans"] == 1


def test_a_malformed_integer_attribute_costs_only_its_own_span():
    """"--5", a 5,000-digit count or time once raised out of int() and dead-lettered every span of the document."""
    def with_count(span_id, count):
        model_call = span(span_id, "", "chat gpt-4o", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                          gen_ai__request__model="gpt-4o", gen_ai__usage__output_tokens=30)
        model_call["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": count}})
        return model_call

    late = with_count("d4d4d4d4d4d4d4d4", "7")
    late["endTimeUnixNano"] = "9" * 5000
    doc = document(with_count("a1a1a1a1a1a1a1a1", "100"), with_count("b2b2b2b2b2b2b2b2", "--5"),
                   with_count("c3c3c3c3c3c3c3c3", "9" * 5000), late)
    summary, sink = meter(doc)
    # "--5" is no number: that span bills its output alone; the huge count and the huge time are refused.
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events) == [
        ("input", 100), ("output", 30), ("output", 30)]
    assert sorted(letter.reason for letter in sink.dead_letters) == ["invalid_counts", "invalid_timestamp"]
    assert summary.records == 4 and summary.metered == 2


def test_a_span_that_bills_nothing_is_skipped_whatever_its_time():
    """Its time is read only to bill: a tool or HTTP span with a broken time is skipped for what it is, as any other
    such span, while a model call with one is an invalid_timestamp letter and the rest of the trace bills."""
    tool = span("c3c3c3c3c3c3c3c3", "a1a1a1a1a1a1a1a1", "execute_tool lookup", 1, gen_ai__operation__name="execute_tool")
    tool["endTimeUnixNano"] = "soon"
    http = span("e5e5e5e5e5e5e5e5", "a1a1a1a1a1a1a1a1", "GET", 1, http__request__method="GET")
    http["endTimeUnixNano"] = http["startTimeUnixNano"] = -5
    call = span("b2b2b2b2b2b2b2b2", "a1a1a1a1a1a1a1a1", "chat gpt-4o", 1, gen_ai__request__model="gpt-4o",
                gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=30)
    call["endTimeUnixNano"] = "1.5e18"
    fine = span("d4d4d4d4d4d4d4d4", "a1a1a1a1a1a1a1a1", "chat gpt-4o", 1_732_646_401_500_000_000,
                gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=200, gen_ai__usage__output_tokens=40)
    summary, sink = meter(document(tool, http, call, fine))
    assert sorted((e.properties["token_type"], e.properties["tokens"], e.timestamp) for e in sink.events) == [
        ("input", 200, "1732646401.500"), ("output", 40, "1732646401.500")]
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_timestamp"]
    assert sink.dead_letters[0].source.endswith(f"#span={TRACE}/b2b2b2b2b2b2b2b2")
    assert summary.skipped == {"no_usage": 1, "not_genai_span": 1} and summary.records == 4


def test_resource_attributes_lie_beneath_the_span_own_for_billing_and_attribution():
    # A resource without GenAI keys: "attributes.tenant.id" still finds the resource's tenant, and a span's own
    # key of the same name wins over it.
    call = span("b2b2b2b2b2b2b2b2", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=10, gen_ai__usage__output_tokens=2)
    own_tenant = span("c3c3c3c3c3c3c3c3", "", "chat", 1_732_646_400_000_000_000, gen_ai__operation__name="chat",
                      gen_ai__request__model="gpt-4o", gen_ai__usage__input_tokens=4, gen_ai__usage__output_tokens=1,
                      **{"tenant.id": "sub_span"})
    _, sink = meter(document(call, own_tenant), paths=("attributes.tenant.id",))
    assert billed(sink) == {("sub_acme", "gpt-4o", "input"): 10, ("sub_acme", "gpt-4o", "output"): 2,
                            ("sub_span", "gpt-4o", "input"): 4, ("sub_span", "gpt-4o", "output"): 1}
    # A resource that names the model for all its spans: a span without its own model is billed with it, and
    # one with its own is billed with that; a resource's operation makes its usage spans aggregates.
    no_model = span("d4d4d4d4d4d4d4d4", "", "chat", 1_732_646_400_000_000_000, gen_ai__usage__input_tokens=3)
    _, sink = meter(document(no_model, call, resource={"tenant.id": "sub_acme", "gen_ai.request.model": "llama3"}))
    assert billed(sink) == {("sub_acme", "llama3", "input"): 3, ("sub_acme", "gpt-4o", "input"): 10,
                            ("sub_acme", "gpt-4o", "output"): 2}
    summary, sink = meter(document(no_model, resource={"tenant.id": "sub_acme", "gen_ai.operation.name": "invoke_agent"}))
    assert sink.events == [] and summary.skipped == {"aggregate_span": 1}


def test_logs_and_metrics_exported_beside_the_traces_bill_nothing_and_are_no_dead_letters():
    """The Collector's S3 exporter in a logs or metrics pipeline writes them under the traces' prefix. Their GenAI
    events and token histograms repeat usage the spans bill, so they are counted as skipped."""
    logs = {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1732646400000000000", "eventName": "gen_ai.client.inference.operation.details",
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}}]}]}]}]}
    metrics = {"resourceMetrics": [{"resource": {"attributes": []}, "scopeMetrics": [{"metrics": [{
        "name": "gen_ai.client.token.usage", "unit": "{token}", "histogram": {"aggregationTemporality": 2, "dataPoints": [
            {"timeUnixNano": "1732646400000000000", "count": "1", "sum": 120,
             "attributes": [{"key": "gen_ai.token.type", "value": {"stringValue": "input"}}]}]}}]}]}]}
    summary, sink = meter(logs, metrics, {**logs, "note": "not an OTLP export"})
    assert sink.events == [] and summary.skipped == {"not_traces": 2}
    assert summary.dead_letters == {"unknown_format": 1}  # anything more than the export is no OTLP document


def test_openinference_spans_bill_their_model_calls_and_not_the_chains_around_them():
    # Arize Phoenix's instrumentations (OpenInference conventions): a CHAIN span that sums its LLM call, the LLM
    # call itself (412 prompt tokens, 256 of them read from the cache; 27 completion tokens, 8 of them reasoning),
    # an EMBEDDING call, and a TOOL span carrying a count of its own.
    doc = document(
        span("a1a1a1a1a1a1a1a1", "", "RunnableSequence", 1_732_646_402_000_000_000,
             openinference__span__kind="CHAIN", llm__token_count__prompt=412, llm__token_count__completion=27),
        span("b2b2b2b2b2b2b2b2", "a1a1a1a1a1a1a1a1", "ChatOpenAI", 1_732_646_401_000_000_000,
             openinference__span__kind="LLM", llm__model_name="gpt-4o-mini-2024-07-18", llm__provider="openai",
             llm__token_count__prompt=412, llm__token_count__completion=27, llm__token_count__total=439,
             llm__token_count__prompt_details__cache_read=256, llm__token_count__prompt_details__audio=0,
             llm__token_count__completion_details__reasoning=8),
        span("c3c3c3c3c3c3c3c3", "", "CreateEmbeddingResponse", 1_732_646_403_000_000_000,
             openinference__span__kind="EMBEDDING", embedding__model_name="text-embedding-3-small",
             llm__token_count__prompt=9, llm__token_count__total=9),
        span("d4d4d4d4d4d4d4d4", "", "search", 1_732_646_404_000_000_000,
             openinference__span__kind="TOOL", llm__token_count__prompt=5))
    summary, sink = meter(doc)
    assert billed(sink) == {
        ("sub_acme", "gpt-4o-mini-2024-07-18", "input"): 156, ("sub_acme", "gpt-4o-mini-2024-07-18", "cached_input"): 256,
        ("sub_acme", "gpt-4o-mini-2024-07-18", "output"): 19, ("sub_acme", "gpt-4o-mini-2024-07-18", "reasoning"): 8,
        ("sub_acme", "text-embedding-3-small", "input"): 9}
    assert summary.skipped["aggregate_span"] == 2 and sink.dead_letters == []


def test_the_ai_sdks_step_spans_split_their_cache_reads_and_reasoning():
    # The AI SDK's telemetry (release 6): the run span (ai.generateText) holds ai.usage.* only; each step span
    # gen_ai.usage.* with every input and output token, the cache reads and reasoning only under ai.usage.
    doc = document(
        span("1010101010101010", "", "ai.generateText", 1_732_646_402_000_000_000, ai__operationId="ai.generateText",
             ai__usage__inputTokens=1200, ai__usage__outputTokens=300, ai__model__id="gpt-4o"),
        span("2020202020202020", "1010101010101010", "ai.generateText.doGenerate", 1_732_646_401_000_000_000,
             ai__operationId="ai.generateText.doGenerate", gen_ai__request__model="gpt-4o",
             gen_ai__response__model="gpt-4o-2024-08-06", gen_ai__response__id="chatcmpl-aisdk00000000000000000001",
             gen_ai__usage__input_tokens=1200, gen_ai__usage__output_tokens=300, ai__usage__inputTokens=1200,
             ai__usage__outputTokens=300, ai__usage__cachedInputTokens=1024, ai__usage__reasoningTokens=100))
    summary, sink = meter(doc)
    assert billed(sink) == {("sub_acme", "gpt-4o-2024-08-06", "input"): 176,
                            ("sub_acme", "gpt-4o-2024-08-06", "cached_input"): 1024,
                            ("sub_acme", "gpt-4o-2024-08-06", "output"): 200,
                            ("sub_acme", "gpt-4o-2024-08-06", "reasoning"): 100}
    assert summary.metered == 1 and not sink.dead_letters


def ai_sdk_step(span_id, provider, model, inputs, outputs, metadata, **more):
    """A step span of the AI SDK's telemetry (ai.generateText.doGenerate / ai.streamText.doStream) under its run's."""
    return span(span_id, "1010101010101010", "ai.generateText.doGenerate", 1_732_646_401_000_000_000,
                ai__operationId="ai.generateText.doGenerate", ai__model__provider=provider, ai__model__id=model,
                gen_ai__request__model=model, gen_ai__response__id=f"msg_01aisdk{span_id}",
                gen_ai__usage__input_tokens=inputs, gen_ai__usage__output_tokens=outputs,
                ai__response__providerMetadata=json.dumps(metadata), **more)


ANTHROPIC_USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 40000,
                   "output_tokens": 300, "service_tier": "standard"}


def test_the_ai_sdks_anthropic_and_bedrock_steps_bill_the_cache_their_input_count_leaves_out():
    claude, bedrock = "claude-sonnet-4-5-20250929", "anthropic.claude-3-5-sonnet-20241022-v2:0"
    doc = document(
        # Release 5, generateText: Anthropic's input (12) without the cache; reads and writes only in its metadata.
        ai_sdk_step("3030303030303030", "anthropic.messages", claude, 12, 300,
                    {"anthropic": {"usage": ANTHROPIC_USAGE, "cacheCreationInputTokens": 1500, "stopSequence": None}},
                    ai__usage__promptTokens=12, ai__usage__completionTokens=300),
        # Release 5, streamText: the reads (3000) beside an input (5000) larger than they are; writes in the metadata.
        ai_sdk_step("4040404040404040", "anthropic.messages", claude, 5000, 80,
                    {"anthropic": {"cacheCreationInputTokens": 200}}, ai__usage__inputTokens=5000,
                    ai__usage__cachedInputTokens=3000),
        # Release 4, Bedrock: reads and writes in the metadata's usage.
        ai_sdk_step("5050505050505050", "amazon-bedrock", bedrock, 20, 7,
                    {"bedrock": {"usage": {"cacheReadInputTokens": 1000, "cacheWriteInputTokens": 300}}},
                    ai__usage__promptTokens=20, ai__usage__completionTokens=7),
        # Release 6: every input token counted (12 + 40000 + 1800), split in inputTokenDetails.
        ai_sdk_step("6060606060606060", "anthropic.messages", claude, 41812, 300,
                    {"anthropic": {"usage": {**ANTHROPIC_USAGE, "cache_creation_input_tokens": 1800}}},
                    ai__usage__inputTokenDetails__noCacheTokens=12, ai__usage__inputTokenDetails__cacheReadTokens=40000,
                    ai__usage__inputTokenDetails__cacheWriteTokens=1800, ai__usage__cachedInputTokens=40000,
                    ai__usage__outputTokenDetails__reasoningTokens=0))
    summary, sink = meter(doc)
    by_step = {}
    for event in sink.events:
        by_step.setdefault(event.transaction_id.rpartition("-")[0], {})[event.properties["token_type"]] = \
            event.properties["tokens"]
    assert sorted(by_step.values(), key=lambda counts: counts["input"]) == [
        {"input": 12, "cached_input": 40000, "cache_write": 1500, "output": 300},
        {"input": 12, "cached_input": 40000, "cache_write": 1800, "output": 300},
        {"input": 20, "cached_input": 1000, "cache_write": 300, "output": 7},
        {"input": 5000, "cached_input": 3000, "cache_write": 200, "output": 80}]
    assert summary.metered == 4 and not sink.dead_letters



def test_the_ai_sdks_release_4_openai_steps_bill_the_cached_and_reasoning_tokens_their_metadata_names():
    # @ai-sdk/openai 1.x puts OpenAI's prompt_tokens_details.cached_tokens and completion_tokens_details.
    # reasoning_tokens in providerMetadata.openai alone (cachedPromptTokens, reasoningTokens): inside the counts.
    doc = document(ai_sdk_step("7070707070707070", "openai.chat", "gpt-4o-mini", 2000, 450,
                               {"openai": {"cachedPromptTokens": 1536, "reasoningTokens": 0,
                                           "acceptedPredictionTokens": 0, "rejectedPredictionTokens": 0}},
                               ai__usage__promptTokens=2000, ai__usage__completionTokens=450),
                   ai_sdk_step("8080808080808080", "openai.responses", "o4-mini", 900, 700,
                               {"openai": {"responseId": "resp_67c9fdcecf488190bdd9a0409de3a1f0",
                                           "cachedPromptTokens": 0, "reasoningTokens": 640}},
                               ai__usage__promptTokens=900, ai__usage__completionTokens=700))
    summary, sink = meter(doc)
    # 2000 - 1536 = 464 uncached; 700 - 640 = 60 output beside the reasoning.
    assert billed(sink) == {("sub_acme", "gpt-4o-mini", "input"): 464, ("sub_acme", "gpt-4o-mini", "cached_input"): 1536,
                            ("sub_acme", "gpt-4o-mini", "output"): 450, ("sub_acme", "o4-mini", "input"): 900,
                            ("sub_acme", "o4-mini", "output"): 60, ("sub_acme", "o4-mini", "reasoning"): 640}
    assert summary.metered == 2 and not sink.dead_letters


def flat_span(span_id, parent, name, end_ns, attributes, kind="INTERNAL"):
    """A span as CloudWatch's aws/spans log group holds it: one per log event, plain attribute maps, numeric times."""
    return {"resource": {"attributes": {"service.name": "support.DEFAULT", "cloud.platform": "aws_bedrock_agentcore"}},
            "scope": {"name": "strands.telemetry.tracer", "version": ""}, "traceId": TRACE, "spanId": span_id,
            "parentSpanId": parent, "flags": 256, "name": name, "kind": kind, "startTimeUnixNano": end_ns - 900_000_000,
            "endTimeUnixNano": end_ns, "durationNano": 900_000_000, "attributes": attributes, "status": {"code": "OK"}}


STRANDS_CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents",
                "gen_ai.request.model": "us.anthropic.claude-sonnet-4-6", "gen_ai.usage.prompt_tokens": 1980,
                "gen_ai.usage.input_tokens": 1980, "gen_ai.usage.completion_tokens": 119,
                "gen_ai.usage.output_tokens": 119, "gen_ai.usage.total_tokens": 2099,
                "gen_ai.usage.cache_read_input_tokens": 500, "gen_ai.usage.cache_write_input_tokens": 100,
                "user.id": "sub_7"}


def test_spans_from_cloudwatch_aws_spans_bill_their_model_calls_as_strands_reports_them():
    # A Strands agent on AgentCore: the agent span sums its cycles' usage, the chat span is the call (Bedrock's
    # counts: the cache reads and writes beside the input), a tool span and an HTTP span carry none.
    lines = [
        flat_span("a1a1a1a1a1a1a1a1", "", "invoke_agent support", 1_764_300_004_000_000_000,
                  {"gen_ai.operation.name": "invoke_agent", "gen_ai.system": "strands-agents",
                   "gen_ai.usage.input_tokens": 1980, "gen_ai.usage.output_tokens": 119,
                   "gen_ai.usage.cache_read_input_tokens": 500, "user.id": "sub_7"}),
        flat_span("b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3", "chat", 1_764_300_002_644_916_837, STRANDS_CHAT, "CLIENT"),
        flat_span("d4d4d4d4d4d4d4d4", "c3c3c3c3c3c3c3c3", "execute_tool lookup", 1_764_300_003_000_000_000,
                  {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}),
        flat_span("e5e5e5e5e5e5e5e5", "d4d4d4d4d4d4d4d4", "GET", 1_764_300_003_100_000_000,
                  {"http.request.method": "GET", "http.response.status_code": 200}),
    ]
    summary, sink = meter_lines(lines, {"subscription_from": ["attributes.user.id"]})
    assert billed(sink) == {("sub_7", "anthropic.claude-sonnet-4-6", "input"): 1980,
                            ("sub_7", "anthropic.claude-sonnet-4-6", "cached_input"): 500,
                            ("sub_7", "anthropic.claude-sonnet-4-6", "cache_write"): 100,
                            ("sub_7", "anthropic.claude-sonnet-4-6", "output"): 119}
    assert {e.timestamp for e in sink.events} == {"1764300002.644"}
    assert dict(summary.skipped) == {"aggregate_span": 1, "no_usage": 1, "not_genai_span": 1}
    assert not sink.dead_letters


def test_a_span_from_aws_spans_and_the_same_span_exported_to_s3_bill_once():
    flat = flat_span("b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3", "chat", 1_764_300_002_644_916_837, STRANDS_CHAT)
    exported = document(span("b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3", "chat", 1_764_300_002_644_916_837,
                             **{k.replace(".", "__"): v for k, v in STRANDS_CHAT.items()}))
    _, from_cloudwatch = meter_lines([flat], {"subscription_from": ["attributes.user.id"]})
    _, from_s3 = meter(exported)
    assert sorted(e.transaction_id for e in from_cloudwatch.events) == sorted(e.transaction_id for e in from_s3.events)
    assert billed(from_cloudwatch) == billed(from_s3)
