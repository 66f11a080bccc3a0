"""Coding agents' own OpenTelemetry, as a Collector's S3 exporter writes it: Claude Code's `claude_code.api_request`
events and (beta tracing) `claude_code.llm_request` spans, from its monitoring documentation and exports of its
releases 2.0 to 2.1 (attribute names, `event.name` bare or qualified, counts as integers or as digits in text);
Gemini CLI's `gemini_cli.api_response` events, as its telemetry (packages/core/src/telemetry/types.ts) writes
them. Expected counts worked out by hand."""

import json

from conftest import Collect
from test_otlp_spans import attr, billed

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

RESOURCE = {"service.name": "claude-code", "service.version": "2.1.175", "os.type": "linux",
            "team.id": "sub_platform"}  # (team.id: what OTEL_RESOURCE_ATTRIBUTES adds)
COMMON = {"session.id": "0b4a6c1e-3d2f-4e5a-9b8c-7d6e5f4a3b2c", "organization.id": "9f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19",
          "user.account_uuid": "00000000-1111-2222-3333-444444444444", "user.email": "dev@example.com",
          "terminal.type": "vscode"}


def log_record(name, time_ns, body=None, common=COMMON, **attributes):
    """A log record as Claude Code writes it (its body the event's qualified name), or with another ``body``."""
    return {"timeUnixNano": str(time_ns), "observedTimeUnixNano": str(time_ns), "severityNumber": 9,
            "body": {"stringValue": body or f"claude_code.{name}"},
            "attributes": [attr(key, value) for key, value in {**common, "event.name": name, **attributes}.items()],
            "droppedAttributesCount": 0}


def logs_export(*records, resource=RESOURCE):
    return {"resourceLogs": [{"resource": {"attributes": [attr(k, v) for k, v in resource.items()]},
                              "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events",
                                                       "version": "2.1.175"}, "logRecords": list(records)}]}]}


def meter(*docs, paths=("attributes.team.id",)):
    sink = Collect()
    m = Meter(parse_config({"subscription_from": list(paths)}), TokenizerPool({}), sink)
    for number, doc in enumerate(docs):
        key = f"otel/logs/2026/11/28/{number}.json"
        m.add(RawRecord(f"s3://telemetry/{key}", f"s3:telemetry/{key}@etag#1", json.dumps(doc), 1_795_900_000_000))
    return m.finish(), sink


def test_each_api_request_event_bills_its_request_and_the_exports_other_events_bill_nothing():
    export = logs_export(
        log_record("user_prompt", 1_795_851_000_000_000_000, prompt_length=42, **{"prompt.id": "p1"}),
        log_record("api_request", 1_795_851_002_493_000_000, model="claude-sonnet-4-6", input_tokens=3,
                   output_tokens=5, cache_read_tokens=17241, cache_creation_tokens=16935, cost_usd=0.1068663,
                   duration_ms=2493, request_id="req_011CUaBcDeFgHiJkLmNoPqRs", **{"prompt.id": "p1"}),
        log_record("tool_result", 1_795_851_003_000_000_000, tool_name="Bash", success="true", duration_ms=120),
        log_record("api_error", 1_795_851_004_000_000_000, model="claude-sonnet-4-6", error="Overloaded",
                   status_code="529", attempt=1),
        # An older release: the name qualified, the counts as digits in text, no request id.
        {**log_record("api_request", 1_795_851_009_000_000_000, model="claude-haiku-4-5-20251001",
                      input_tokens="812", output_tokens="64", cache_read_tokens="0", cache_creation_tokens="0",
                      cost_usd="0.00113"), "body": {"stringValue": "claude_code.api_request"}})
    summary, sink = meter(export)
    assert billed(sink) == {("sub_platform", "claude-sonnet-4-6", "input"): 3,
                            ("sub_platform", "claude-sonnet-4-6", "cached_input"): 17241,
                            ("sub_platform", "claude-sonnet-4-6", "cache_write"): 16935,
                            ("sub_platform", "claude-sonnet-4-6", "output"): 5,
                            ("sub_platform", "claude-haiku-4-5-20251001", "input"): 812,
                            ("sub_platform", "claude-haiku-4-5-20251001", "output"): 64}
    # Each at its record's time: 1,795,851,002.493 and 1,795,851,009 s.
    assert {e.properties["model"]: e.timestamp for e in sink.events} == {
        "claude-sonnet-4-6": "1795851002.493", "claude-haiku-4-5-20251001": "1795851009.000"}
    assert (summary.records, summary.metered, dict(summary.skipped)) == (5, 2, {"not_traces": 3})
    assert not sink.dead_letters


def test_a_request_exported_as_an_event_and_as_a_span_bills_under_the_same_ids():
    event = logs_export(log_record("api_request", 1_795_851_002_493_000_000, model="claude-opus-4-5-20251101",
                                   input_tokens=94, output_tokens=65, cache_read_tokens=46982,
                                   cache_creation_tokens=0, request_id="req_01ExampleRequestId00000"))
    interaction = {"traceId": "b39cda973a766d91b09bb5d73c592fbb", "spanId": "3e995792b34d8bb3", "parentSpanId": "",
                   "name": "claude_code.interaction", "startTimeUnixNano": "1795850990000000000",
                   "endTimeUnixNano": "1795851003000000000",
                   "attributes": [attr(k, v) for k, v in {**COMMON, "span.type": "interaction"}.items()]}
    request = {"traceId": "b39cda973a766d91b09bb5d73c592fbb", "spanId": "f6dbfc87e4c53ed3",
               "parentSpanId": "3e995792b34d8bb3", "name": "claude_code.llm_request",
               "startTimeUnixNano": "1795850990071000000", "endTimeUnixNano": "1795851002493000000",
               "attributes": [attr(k, v) for k, v in {
                   **COMMON, "span.type": "llm_request", "gen_ai.system": "anthropic",
                   "gen_ai.request.model": "claude-opus-4-5-20251101", "model": "claude-opus-4-5-20251101",
                   "gen_ai.response.id": "req_01ExampleRequestId00000", "request_id": "req_01ExampleRequestId00000",
                   "input_tokens": 94, "output_tokens": 65, "cache_read_tokens": 46982, "cache_creation_tokens": 0,
                   "success": True, "stop_reason": "end_turn", "attempt": 1}.items()]}
    traces = {"resourceSpans": [{"resource": {"attributes": [attr(k, v) for k, v in RESOURCE.items()]},
                                 "scopeSpans": [{"scope": {"name": "com.anthropic.claude_code.tracing"},
                                                 "spans": [interaction, request]}]}]}
    summary, sink = meter(event, traces)
    first, second = sink.events[:3], sink.events[3:]  # the event's, then the span's
    assert [(e.transaction_id, e.properties["token_type"], e.properties["tokens"]) for e in first] == \
        [(e.transaction_id, e.properties["token_type"], e.properties["tokens"]) for e in second]
    assert {(e.properties["token_type"], e.properties["tokens"]) for e in first} == {
        ("input", 94), ("cached_input", 46982), ("output", 65)}
    # The interaction span carries no counts and no GenAI attribute: counted, no dead letter.
    assert summary.metered == 2 and dict(summary.skipped) == {"not_genai_span": 1} and not sink.dead_letters


def test_an_unreadable_api_request_costs_only_itself_and_a_bedrock_model_bills_as_the_model():
    export = logs_export(
        log_record("api_request", 1_795_851_002_000_000_000, model="claude-sonnet-4-6", input_tokens="many",
                   output_tokens=5, request_id="req_bad"),
        log_record("api_request", 1_795_851_003_000_000_000, model="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                   input_tokens=10, output_tokens=7, cache_read_tokens=300, cache_creation_tokens=20,
                   request_id="req_bedrock"))
    summary, sink = meter(export, paths=("attributes.user.email",))
    assert billed(sink) == {("dev@example.com", "anthropic.claude-sonnet-4-5-20250929-v1:0", "input"): 10,
                            ("dev@example.com", "anthropic.claude-sonnet-4-5-20250929-v1:0", "cached_input"): 300,
                            ("dev@example.com", "anthropic.claude-sonnet-4-5-20250929-v1:0", "cache_write"): 20,
                            ("dev@example.com", "anthropic.claude-sonnet-4-5-20250929-v1:0", "output"): 7}
    [letter] = sink.dead_letters
    assert letter.reason == "invalid_counts" and "input_tokens" in letter.detail
    assert letter.source.endswith("#log=0") and summary.metered == 1
    # A resource whose attributes cannot be read may have named who pays: its requests are dead letters, not
    # billed to whoever a default names.
    broken = logs_export(log_record("api_request", 1_795_851_003_000_000_000, model="claude-sonnet-4-6",
                                    input_tokens=10, output_tokens=7, request_id="req_broken"))
    broken["resourceLogs"][0]["resource"]["attributes"] = 5  # (OTLP: a list of key-value pairs)
    summary, sink = meter(broken, paths=("attributes.team.id",))
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record"] and not sink.events


def test_a_logs_export_without_an_api_request_bills_nothing_and_is_no_dead_letter():
    # Another program's event of the bare name, in its own scope, is not Claude Code's.
    other = {"resourceLogs": [{"resource": {"attributes": [attr("service.name", "billing-api")]},
                               "scopeLogs": [{"scope": {"name": "billing.events"}, "logRecords": [
                                   {"timeUnixNano": "1795851000000000000", "body": {"stringValue": "called upstream"},
                                    "attributes": [attr("event.name", "api_request"), attr("model", "v2"),
                                                   attr("input_tokens", 3)]}]}]}]}
    summary, sink = meter(logs_export(log_record("user_prompt", 1_795_851_000_000_000_000, prompt_length=3)),
                          {"resourceLogs": []}, other)
    assert (summary.metered, dict(summary.skipped)) == (0, {"not_traces": 3}) and not sink.dead_letters


def test_an_exporter_that_leaves_the_body_out_names_the_event_in_its_attributes():
    record = log_record("api_request", 1_795_851_002_000_000_000, model="claude-sonnet-4-6", input_tokens=7,
                        output_tokens=2, request_id="req_011CUbodyless")
    del record["body"]
    summary, sink = meter(logs_export(record))
    assert billed(sink) == {("sub_platform", "claude-sonnet-4-6", "input"): 7,
                            ("sub_platform", "claude-sonnet-4-6", "output"): 2}


GEMINI_COMMON = {"session.id": "5f0c2d4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "installation.id": "inst-42",
                 "user.email": "dev@example.com", "event.timestamp": "2026-11-28T10:00:00.000Z"}


def gemini_record(name, time_ns, **attributes):
    """Gemini CLI's: ``name`` is (its event.name, its body, a sentence)."""
    return log_record(name[0], time_ns, body=name[1], common=GEMINI_COMMON, **attributes)


def test_gemini_cli_bills_each_api_response_as_gemini_counts_it_and_not_its_restatement():
    export = logs_export(
        gemini_record(("gemini_cli.user_prompt", "User prompt. Length: 31."), 1_795_860_000_000_000_000,
                      prompt_length=31, prompt_id="p-1"),
        gemini_record(("gemini_cli.api_request", "API request to gemini-2.5-pro."), 1_795_860_000_100_000_000,
                      model="gemini-2.5-pro", prompt_id="p-1"),
        # promptTokenCount 12,000 of which 8,000 cached, candidates 350, thoughts 420, no tool use: total 12,770.
        gemini_record(("gemini_cli.api_response", "API response from gemini-2.5-pro. Status: 200. Duration: 5120ms."),
                      1_795_860_005_220_000_000, model="gemini-2.5-pro", duration_ms=5120, input_token_count=12000,
                      output_token_count=350, cached_content_token_count=8000, thoughts_token_count=420,
                      tool_token_count=0, total_token_count=12770, prompt_id="p-1", status_code=200,
                      auth_type="oauth-personal"),
        # The same answer restated in the GenAI conventions' event: it repeats the usage, and bills nothing.
        gemini_record(("gen_ai.client.inference.operation.details", "GenAI operation details from gemini-2.5-pro."),
                      1_795_860_005_220_000_000, **{"gen_ai.response.id": "resp-1", "gen_ai.request.model":
                                                    "gemini-2.5-pro", "gen_ai.usage.input_tokens": 12000,
                                                    "gen_ai.usage.output_tokens": 350}),
        # A release that wrote the counts as text, with a tool-use prompt (beside the prompt, as Gemini counts it).
        gemini_record(("gemini_cli.api_response", "API response from gemini-2.5-flash. Status: 200."),
                      1_795_860_009_000_000_000, model="gemini-2.5-flash", input_token_count="900",
                      output_token_count="40", cached_content_token_count="0", thoughts_token_count="0",
                      tool_token_count="150", total_token_count="1090"),
        resource={"service.name": "gemini-cli", "service.version": "0.18.0", "team.id": "sub_platform"})
    summary, sink = meter(export)
    # 12,000 - 8,000 = 4,000 uncached; 900 + 150 = 1,050 for the second.
    assert billed(sink) == {("sub_platform", "gemini-2.5-pro", "input"): 4000,
                            ("sub_platform", "gemini-2.5-pro", "cached_input"): 8000,
                            ("sub_platform", "gemini-2.5-pro", "output"): 350,
                            ("sub_platform", "gemini-2.5-pro", "reasoning"): 420,
                            ("sub_platform", "gemini-2.5-flash", "input"): 1050,
                            ("sub_platform", "gemini-2.5-flash", "output"): 40}
    assert {e.properties["model"]: e.timestamp for e in sink.events} == {
        "gemini-2.5-pro": "1795860005.220", "gemini-2.5-flash": "1795860009.000"}
    assert (summary.metered, dict(summary.skipped)) == (2, {"not_traces": 3}) and not sink.dead_letters
    # Cached tokens past the prompt they are part of: a clear error for that answer alone.
    bad = logs_export(gemini_record(("gemini_cli.api_response", "API response."), 1_795_860_010_000_000_000,
                                    model="gemini-2.5-pro", input_token_count=10, cached_content_token_count=50,
                                    output_token_count=1))
    _, sink = meter(bad)
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_counts"]


CODEX_COMMON = {"conversation.id": "019a9776-0a34-7842-8627-112b63d66e90", "app.version": "0.63.0",
                "auth_mode": "ApiKey", "originator": "codex_cli_rs", "user.email": "dev@example.com",
                "terminal.type": "vscode", "model": "gpt-5.1-codex", "slug": "gpt-5.1-codex"}


def codex_record(time_ns, **attributes):
    """A record of Codex's OTLP logs (codex-rs/otel, session_telemetry.rs): the tracing event's fields as attributes,
    the counts it formats (`%`) as text, the optional ones as integers; no body."""
    return {"timeUnixNano": str(time_ns), "observedTimeUnixNano": str(time_ns), "severityNumber": 9,
            "attributes": [attr(key, value) for key, value in {**attributes, **CODEX_COMMON,
                                                                "event.timestamp": "2026-11-28T10:00:00.000Z"}.items()]}


def codex_export(*records):
    """Codex's logs export as a Collector writes it: its records under its resource and log-only scope."""
    return {"resourceLogs": [{"resource": {"attributes": [attr("service.name", "codex_cli_rs")]}, "scopeLogs": [
        {"scope": {"name": "codex_otel.log_only"}, "logRecords": list(records)}]}]}


def test_codex_bills_each_completed_response_and_none_of_its_other_events():
    export = codex_export(
            codex_record(1_795_870_000_000_000_000, **{"event.name": "codex.conversation_starts"},
                         provider_name="OpenAI", approval_policy="on-request"),
            codex_record(1_795_870_000_100_000_000, **{"event.name": "codex.api_request", "http.response.status_code":
                                                       200}, duration_ms="140", attempt=1),
            codex_record(1_795_870_000_200_000_000, **{"event.name": "codex.sse_event", "event.kind":
                                                       "response.created"}, duration_ms="2"),
            # The usage of a response: 12,840 input of which 11,520 cached, 612 output of which 448 reasoning
            # (tool_token_count is the response's total, 13,452).
            codex_record(1_795_870_004_700_000_000, **{"event.name": "codex.sse_event", "event.kind":
                                                       "response.completed"}, input_token_count="12840",
                         output_token_count="612", cached_token_count=11520, reasoning_token_count=448,
                         tool_token_count="13452"),
            # A response.completed Codex could not read: its error, and no counts.
            codex_record(1_795_870_009_000_000_000, **{"event.name": "codex.sse_event", "event.kind":
                                                       "response.completed", "error.message": "missing usage"}))
    summary, sink = meter(export, paths=("attributes.user.email",))
    # 12,840 - 11,520 = 1,320 uncached; 612 - 448 = 164 visible output (the release names no cache writes).
    assert billed(sink) == {("dev@example.com", "gpt-5.1-codex", "input"): 1320,
                            ("dev@example.com", "gpt-5.1-codex", "cached_input"): 11520,
                            ("dev@example.com", "gpt-5.1-codex", "output"): 164,
                            ("dev@example.com", "gpt-5.1-codex", "reasoning"): 448}
    assert {e.timestamp for e in sink.events} == {"1795870004.700"}
    assert (summary.metered, dict(summary.skipped)) == (1, {"not_traces": 3, "no_usage": 1})
    assert not sink.dead_letters


def test_a_later_codex_release_names_its_cache_writes_inside_the_input():
    # 5,000 input: 3,000 read from the cache, 1,200 written to it, 800 neither; 90 output, no reasoning.
    export = codex_export(
            {**codex_record(0, **{"event.name": "codex.sse_event", "event.kind": "response.completed"},
                            input_token_count="5000", output_token_count="90", cached_token_count=3000,
                            cache_write_token_count=1200, reasoning_token_count=0, tool_token_count="5090",
                            ttft_ms=412), "timeUnixNano": "0"})
    summary, sink = meter(export, paths=("attributes.user.email",))
    assert billed(sink) == {("dev@example.com", "gpt-5.1-codex", "input"): 800,
                            ("dev@example.com", "gpt-5.1-codex", "cached_input"): 3000,
                            ("dev@example.com", "gpt-5.1-codex", "cache_write"): 1200,
                            ("dev@example.com", "gpt-5.1-codex", "output"): 90}
    # Its source time left 0 (unknown in OTLP): the event.timestamp it carries, 2026-11-28T10:00:00.000Z.
    assert {e.timestamp for e in sink.events} == {"1795860000.000"}
