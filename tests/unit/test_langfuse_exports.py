"""Langfuse's observations (langfuse_exports.py): rows of its blob storage export and objects of its public API.

The usage kinds are what Langfuse's ingestion writes for each integration (packages/shared/src/server/ingestion/
types.ts for OpenAI's usage, the Python SDK's LangChain handler for Anthropic's and Gemini's): the counts expected
below are worked out by hand from the provider's own numbers."""

import json

from conftest import meter_lines

CONFIG = {"subscription_from": ["user_id", "userId", "metadata.customer"]}
TRACE = "0af7651916cd43dd8448eb211c80319c"


def row(observation_id: str, usage: dict | None, kind: str = "GENERATION", model: str = "gpt-4o-2024-08-06",
        end: str | None = "2026-11-20 10:15:04.905000", **more) -> dict:
    """An enriched export row (observations_v2/), its map values quoted as ClickHouse writes UInt64."""
    value = {"id": observation_id, "trace_id": TRACE, "project_id": "cm1proj", "environment": "default", "type": kind,
             "parent_observation_id": "", "start_time": "2026-11-20 10:15:02.120000", "end_time": end,
             "name": "ChatOpenAI", "metadata": {}, "level": "DEFAULT", "provided_model_name": model,
             "cost_details": {"total": 0.0081}, "total_cost": 0.0081, "user_id": "sub_42", **more}
    if usage is not None:
        value["usage_details"] = {kind: str(n) for kind, n in usage.items()}
    return value


def test_an_openai_generation_bills_the_parts_langfuse_split_its_usage_into():
    # OpenAI: prompt_tokens 2000 of which cached_tokens 800, completion_tokens 310 of which reasoning_tokens 64.
    # Langfuse keeps input 2000 - 800, output 310 - 64, the details as input_/output_ kinds, total 2310.
    usage = {"input": 1200, "input_cached_tokens": 800, "input_audio_tokens": 0, "output": 246,
             "output_reasoning_tokens": 64, "output_accepted_prediction_tokens": 0, "total": 2310}
    summary, sink = meter_lines([row("5c8d2f9a1b3e4d70", usage)], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 1200, ("sub_42", "cached_input"): 800, ("sub_42", "output"): 246,
                             ("sub_42", "reasoning"): 64}
    assert {e.timestamp for e in sink.events} == {"1795169704.905"}  # its end: 2026-11-20 10:15:04.905 UTC
    assert {e.properties["model"] for e in sink.events} == {"gpt-4o-2024-08-06"}
    assert summary.metered == 1 and not sink.dead_letters


def test_an_anthropic_call_bills_alike_through_either_langchain_path():
    # Anthropic: input_tokens 12 (uncached), cache_read_input_tokens 4000, cache_creation_input_tokens 150, output 420.
    # Its raw usage keeps Anthropic's names beside input/output; LangChain's usage_metadata counts the cache inside
    # input_tokens (4162) and Langfuse takes its input_token_details out again.
    raw = {"input": 12, "output": 420, "cache_read_input_tokens": 4000, "cache_creation_input_tokens": 150,
           "total": 4582}
    metadata = {"input": 12, "input_cache_read": 4000, "input_cache_creation": 150, "output": 420, "total": 4582}
    expected = {("sub_42", "input"): 12, ("sub_42", "cached_input"): 4000, ("sub_42", "cache_write"): 150,
                ("sub_42", "output"): 420}
    for usage in (raw, metadata):
        _, sink = meter_lines([row("d2", usage, model="claude-sonnet-4-20250514")], CONFIG)
        assert sink.totals() == expected


def test_a_gemini_call_with_modalities_bills_each_part_once():
    # Gemini: prompt 1258 (text 1000, image 258), of which cached 300 (text); candidates 95 (text), thoughts 40.
    # The LangChain handler takes each modality out of input, then the cached part out of input and of its modality.
    usage = {"input": 0, "input_modality_1": 700, "input_modality_2": 258, "cached_modality_1": 300,
             "output": 0, "output_modality_1": 95, "output_reasoning": 40, "total": 1393}
    _, sink = meter_lines([row("g1", usage, model="gemini-2.5-flash")], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 700, ("sub_42", "input_image"): 258,
                             ("sub_42", "cached_input"): 300, ("sub_42", "output"): 95, ("sub_42", "reasoning"): 40}
    assert sum(sink.totals().values()) == 1258 + 95 + 40


def test_overlapping_or_unknown_kinds_are_dead_letters_not_guesses():
    # langfuse#10592: an instrumentation sends the inclusive input beside the cache read; its total says so.
    overlapping = {"input": 4162, "input_cache_read": 4000, "output": 420, "total": 4582}
    unknown = {"input": 100, "output": 20, "input_tool_use_tokens": 30, "total": 150}
    _, sink = meter_lines([row("x1", overlapping), row("x2", unknown)], CONFIG)
    assert not sink.events
    details = [letter.detail for letter in sink.dead_letters]
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_counts", "invalid_counts"]
    assert "8,582" in details[0] and "4,582" in details[0]
    assert "input_tool_use_tokens" in details[1]


def test_units_that_are_not_tokens_bill_nothing_and_keep_langfuse_s_own_total():
    # No total sent: Langfuse adds one up from every kind, the grounding queries with the tokens.
    _, sink = meter_lines([row("q1", {"input": 500, "output": 60, "grounding_queries": 2, "total": 562})], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 500, ("sub_42", "output"): 60} and not sink.dead_letters


def test_only_model_calls_bill_and_the_rest_say_why():
    rows = [row("a1", {"input": 2000, "output": 310, "total": 2310}, kind="AGENT", model=""),  # sums its calls
            row("s1", {}, kind="SPAN", model=""),
            row("g2", {}, end=None),  # still running when exported
            row("g3", {}),  # ended, nothing recorded
            row("g4", None),  # the usage field group not exported
            row("e1", {"input": 9, "total": 9}, kind="EMBEDDING", model="text-embedding-3-small")]
    summary, sink = meter_lines(rows, CONFIG)
    assert dict(summary.skipped) == {"aggregate_span": 1, "no_usage": 2, "not_final": 1}
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record"]
    assert sink.totals() == {("sub_42", "input"): 9}


def test_the_export_s_scores_traces_and_manifest_bill_nothing():
    score = {"id": "s-1", "timestamp": "2026-11-20 10:16:00.000000", "project_id": "cm1proj", "environment": "default",
             "trace_id": TRACE, "observation_id": None, "session_id": None, "dataset_run_id": None, "name": "helpful",
             "value": 1, "source": "API", "comment": None, "data_type": "NUMERIC", "string_value": None}
    trace = {"id": TRACE, "timestamp": "2026-11-20 10:15:01.000000", "name": "support", "environment": "default",
             "project_id": "cm1proj", "metadata": {}, "user_id": "sub_42", "session_id": None, "release": None,
             "version": None, "public": False, "bookmarked": False, "tags": [], "input": None, "output": None}
    manifest = {"version": 1, "projectId": "cm1proj", "exportSource": "OBSERVATIONS_V2",
                "window": {"minTimestamp": "2026-11-20T10:00:00.000Z", "maxTimestamp": "2026-11-20T11:00:00.000Z"},
                "maxTimestamp": "2026-11-20T11:00:00.000Z", "createdAt": "2026-11-20T11:05:00.000Z",
                "tables": ["observations_v2"], "files": []}
    summary, sink = meter_lines([score, trace, manifest], CONFIG)
    assert dict(summary.skipped) == {"no_usage": 3} and not sink.dead_letters


def test_an_api_object_and_an_export_row_of_one_observation_are_the_same_events():
    usage = {"input": 1200, "input_cached_tokens": 800, "output": 310, "total": 2310}
    api = {"id": "5c8d2f9a1b3e4d70", "traceId": TRACE, "type": "GENERATION", "name": "ChatOpenAI",
           "startTime": "2026-11-20T10:15:02.120Z", "endTime": "2026-11-20T10:15:04.905Z", "model": "gpt-4o-2024-08-06",
           "usageDetails": usage, "userId": "sub_42", "parentObservationId": None, "level": "DEFAULT"}
    page = {"data": [api, {**api, "id": "6d9e", "type": "SPAN", "usageDetails": {}}],
            "meta": {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}}
    _, from_api = meter_lines([api], CONFIG)
    summary, from_page = meter_lines([page], CONFIG)
    _, from_export = meter_lines([row("5c8d2f9a1b3e4d70", usage)], CONFIG)
    assert len(from_api.events) == 3
    assert {(e.transaction_id, e.timestamp) for e in from_api.events} == {
        (e.transaction_id, e.timestamp) for e in from_export.events} == {
        (e.transaction_id, e.timestamp) for e in from_page.events}
    assert summary.records == 2 and dict(summary.skipped) == {"no_usage": 1}


def test_a_span_without_a_response_id_exported_to_langfuse_and_to_s3_bills_once():
    from test_otlp_spans import document, span

    otlp = document(span("b2b2b2b2b2b2b2b2", "", "chat gpt-4o", 1_795_169_704_905_000_000, gen_ai__operation__name="chat",
                         gen_ai__request__model="gpt-4o-2024-08-06", gen_ai__usage__input_tokens=2000,
                         gen_ai__usage__output_tokens=310, gen_ai__usage__cache_read__input_tokens=800))
    # Langfuse's mapping of the same span: input less the cache read, under the span's trace and id.
    export = {**row("b2b2b2b2b2b2b2b2", {"input": 1200, "output": 310, "input_cached_tokens": 800, "total": 2310}),
              "trace_id": "5b8efff798038103d269b633813fc60c"}
    _, from_span = meter_lines([otlp], {"default_subscription": "sub_42"})
    _, from_langfuse = meter_lines([export], CONFIG)
    assert from_span.totals() == from_langfuse.totals()
    assert {e.transaction_id for e in from_span.events} == {e.transaction_id for e in from_langfuse.events}


def test_a_span_with_a_response_id_bills_once_from_langfuse_s_exports_the_api_and_s3():
    from test_otlp_spans import document, span

    otlp = document(span("c3c3c3c3c3c3c3c3", "", "chat gpt-4o", 1_795_169_704_905_000_000, gen_ai__operation__name="chat",
                         gen_ai__request__model="gpt-4o-2024-08-06", gen_ai__response__id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                         gen_ai__usage__input_tokens=2000, gen_ai__usage__output_tokens=310))
    # Langfuse keeps the span's attributes in the observation's metadata: flattened by path in the enriched export,
    # as JSON text in the legacy export's map of strings, parsed in the API. Its trace id is not the span's here,
    # as when one call is traced by two instrumentations: only the response id can match them.
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.response.id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                  "gen_ai.usage.input_tokens": "2000"}
    usage = {"input": 2000, "output": 310, "total": 2310}
    enriched = row("c3c3c3c3c3c3c3c3", usage, metadata={f"attributes.{key}": value for key, value in attributes.items()})
    legacy = row("c3c3c3c3c3c3c3c3", usage, metadata={"attributes": json.dumps(attributes), "scope": "{}"})
    api = {"id": "c3c3c3c3c3c3c3c3", "traceId": TRACE, "type": "GENERATION", "startTime": "2026-11-20T10:15:02.120Z",
           "endTime": "2026-11-20T10:15:04.905Z", "model": "gpt-4o-2024-08-06", "usageDetails": usage,
           "metadata": {"attributes": attributes}, "userId": "sub_42"}
    _, from_span = meter_lines([otlp], {"default_subscription": "sub_42"})
    ids = {e.transaction_id for e in from_span.events}
    assert len(ids) == 2
    for observation in (enriched, legacy, api):
        _, from_langfuse = meter_lines([observation], CONFIG)
        assert {e.transaction_id for e in from_langfuse.events} == ids
    # Without the attributes (a Langfuse SDK observation) it is known by its trace and id: other ids.
    _, plain = meter_lines([row("c3c3c3c3c3c3c3c3", usage)], CONFIG)
    assert not {e.transaction_id for e in plain.events} & ids


def test_a_whole_trace_from_the_api_bills_its_generations_attributed_by_the_trace_s_user():
    generation = {"id": "g1", "traceId": TRACE, "type": "GENERATION", "startTime": "2026-11-20T10:15:02.120Z",
                  "endTime": "2026-11-20T10:15:04.905Z", "model": "gpt-4o-2024-08-06", "metadata": {},
                  "usageDetails": {"input": 1200, "input_cached_tokens": 800, "output": 310, "total": 2310}}
    broken = {**generation, "id": "g2", "type": None}  # not an observation: its own letter, not dropped
    trace = {"id": TRACE, "timestamp": "2026-11-20T10:15:01.000Z", "name": "support", "userId": "sub_77",
             "sessionId": "s-1", "metadata": {"plan": "pro"}, "tags": [], "public": False, "latency": 4.1,
             "totalCost": 0.0081, "htmlPath": f"/project/cm1proj/traces/{TRACE}", "scores": [],
             "observations": [{**generation, "id": "a1", "type": "AGENT", "model": None}, generation, broken]}
    summary, sink = meter_lines([trace], {"subscription_from": ["userId"]})
    assert sink.totals() == {("sub_77", "input"): 1200, ("sub_77", "cached_input"): 800, ("sub_77", "output"): 310}
    assert summary.records == 3 and dict(summary.skipped) == {"aggregate_span": 1}
    assert [letter.reason for letter in sink.dead_letters] == ["unknown_format"]
