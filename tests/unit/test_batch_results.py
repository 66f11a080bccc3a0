"""Result files of OpenAI's Batch API and Anthropic's Message Batches: each line read as the response it wraps.
Lines follow the providers' documented output files; counts are worked out by hand in each test."""

import pytest
from conftest import meter_lines

from tokenmeter.core import record_key
from tokenmeter.metering.batches import FAILED_REQUEST
from tokenmeter.metering.fields import NothingToBill
from tokenmeter.metering.formats import read_inference
from tokenmeter.metering.records import RecordError

CHAT = {"id": "chatcmpl-9mVRFe3t7wBpmG3Fq7GLsVOSazz1Y", "object": "chat.completion", "created": 1711652795,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 1024},
                  "completion_tokens_details": {"reasoning_tokens": 0}}}
OPENAI_LINE = {"id": "batch_req_6705b1a6c1d88190a1a6bb3c8a2c7f7e", "custom_id": "sub_acme:row-17",
               "response": {"status_code": 200, "request_id": "req_4f5a0e0e7b1c2d3e4f5a6b7c8d9e0f1a", "body": CHAT},
               "error": None}
ANTHROPIC_LINE = {"custom_id": "sub_globex:doc-3", "result": {"type": "succeeded", "message": {
    "id": "msg_014VwiXbi91y3JMjcpyGBHX5", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 11, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 0,
              "output_tokens": 36}}}}


def test_an_openai_batch_line_bills_its_response_as_if_logged_on_its_own():
    inference = read_inference(OPENAI_LINE)
    assert (inference.model, inference.request_id, inference.timestamp_ms) == (
        "gpt-4o-mini-2024-07-18", "chatcmpl-9mVRFe3t7wBpmG3Fq7GLsVOSazz1Y", 1711652795000)
    # 1,200 prompt tokens of which 1,024 read from the cache: 176 input.
    assert inference.counts == {"input": 176, "cached_input": 1024, "output": 300, "reasoning": 0}


def test_an_embedding_in_a_batch_takes_the_request_id_for_the_id_its_body_lacks():
    body = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
            "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    line = {**OPENAI_LINE, "response": {**OPENAI_LINE["response"], "body": body}}
    inference = read_inference(line)
    assert (inference.model, inference.request_id, inference.timestamp_ms) == (
        "text-embedding-3-small", "req_4f5a0e0e7b1c2d3e4f5a6b7c8d9e0f1a", None)
    assert inference.counts == {"input": 8, "cached_input": 0, "output": 0, "reasoning": 0}


@pytest.mark.parametrize("line", [
    # The error file: no response at all.
    {"id": "batch_req_1", "custom_id": "sub_acme:row-18", "response": None,
     "error": {"code": "batch_expired", "message": "This request could not be executed before the batch expired."}},
    # A request the API refused: its status and error body.
    {"id": "batch_req_2", "custom_id": "sub_acme:row-19", "error": None,
     "response": {"status_code": 400, "request_id": "req_1", "body": {"error": {"message": "Invalid model",
                                                                                "type": "invalid_request_error"}}}},
    {"custom_id": "sub_globex:doc-4", "result": {"type": "errored", "error": {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Field required"}}}},
    {"custom_id": "sub_globex:doc-5", "result": {"type": "canceled"}},
    {"custom_id": "sub_globex:doc-6", "result": {"type": "expired"}},
])
def test_a_request_that_did_not_succeed_bills_nothing(line):
    with pytest.raises(NothingToBill) as nothing:
        read_inference(line)
    assert nothing.value.reason == FAILED_REQUEST


def test_an_anthropic_batch_result_bills_its_message():
    inference = read_inference(ANTHROPIC_LINE)
    assert (inference.model, inference.request_id, inference.timestamp_ms) == (
        "claude-sonnet-4-5-20250929", "msg_014VwiXbi91y3JMjcpyGBHX5", None)  # the object's time is taken
    # Anthropic's input_tokens excludes cache reads.
    assert inference.counts == {"input": 11, "cached_input": 2000, "cache_write": 0, "output": 36}


def test_a_moderation_in_a_batch_has_no_tokens_to_bill():
    body = {"id": "modr-0d9740456c391e43c445bf0f010940c7", "model": "omni-moderation-latest", "results": []}
    with pytest.raises(NothingToBill):
        read_inference({**OPENAI_LINE, "response": {**OPENAI_LINE["response"], "body": body}})


@pytest.mark.parametrize(("line", "message"), [
    ({"custom_id": "a", "result": {"type": "succeeded", "message": "hi"}}, "'result.message' must be an object"),
    ({"custom_id": "a", "result": {"type": "done"}}, "'result.type' must be succeeded, errored, canceled or expired"),
    ({"custom_id": "a", "response": {"status_code": "200", "body": CHAT}}, "'response.status_code' must be"),
    ({"custom_id": "a", "response": {"status_code": 200, "body": [CHAT]}}, "'response.body' must be an object"),
])
def test_a_batch_line_that_makes_no_sense_is_a_clear_error(line, message):
    with pytest.raises(RecordError, match=message):
        read_inference(line)


def test_batch_lines_are_attributed_by_the_part_of_custom_id_a_pattern_names():
    config = {"subscription_from": ["user", {"path": "custom_id", "pattern": "^(sub_[a-z]+):"}]}
    lines = [OPENAI_LINE, ANTHROPIC_LINE, {**ANTHROPIC_LINE, "custom_id": "doc-7"},  # no subscription in its id
             {**OPENAI_LINE, "custom_id": "sub_acme:row-20", "response": None, "error": {"code": "x", "message": "y"}}]
    summary, sink = meter_lines(lines, config, fallback_ms=1_732_646_400_000)
    assert (summary.metered, summary.skipped, summary.dead_letters) == (2, {"failed_request": 1},
                                                                         {"unattributed": 1})
    billed = sorted((e.external_subscription_id, e.properties["token_type"], e.properties["tokens"], e.timestamp)
                    for e in sink.events)
    assert billed == [("sub_acme", "cached_input", 1024, "1711652795.000"), ("sub_acme", "input", 176, "1711652795.000"),
                      ("sub_acme", "output", 300, "1711652795.000"),
                      # No time of its own: the object's.
                      ("sub_globex", "cached_input", 2000, "1732646400.000"), ("sub_globex", "input", 11, "1732646400.000"),
                      ("sub_globex", "output", 36, "1732646400.000")]
    # Keyed by the provider's request id, as the response logged on its own would be.
    assert f"{record_key('req:chatcmpl-9mVRFe3t7wBpmG3Fq7GLsVOSazz1Y|gpt-4o-mini-2024-07-18')}-input" in {
        e.transaction_id for e in sink.events}
    [letter] = sink.dead_letters
    assert letter.detail == "no subscription in user, custom_id ~ ^(sub_[a-z]+):"


def test_a_line_with_both_shapes_is_read_by_its_response():
    inference = read_inference({**OPENAI_LINE, "result": 5})
    assert inference.counts == {"input": 176, "cached_input": 1024, "output": 300, "reasoning": 0}


# Bedrock batch inference output (the documented .jsonl.out lines): a Claude request whose body names its model.
BEDROCK_LINE = {"recordId": "CALL0000001", "modelInput": {
    "anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024, "metadata": {"user_id": "sub_initech"},
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Summarize the following call transcript"}]}]},
    "modelOutput": {"id": "msg_bdrk_01Vk1d7eCzv2dVu4mQkhfbjX", "type": "message", "role": "assistant",
                    "model": "claude-3-haiku-20240307", "content": [{"type": "text", "text": "The caller..."}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": 190, "output_tokens": 127, "cache_read_input_tokens": 64}}}


def test_a_bedrock_batch_line_bills_its_claude_response_to_whom_its_request_names():
    summary, sink = meter_lines([BEDROCK_LINE], {"subscription_from": ["modelInput.metadata.user_id"]})
    assert [(e.external_subscription_id, e.properties["token_type"], e.properties["tokens"]) for e in sink.events] == [
        ("sub_initech", "input", 190), ("sub_initech", "cached_input", 64), ("sub_initech", "output", 127)]
    assert sink.events[0].properties["model"] == "claude-3-haiku-20240307"


def test_bedrock_batch_failures_and_the_jobs_manifest_bill_nothing():
    failed = {"recordId": "1223213ABCD", "modelInput": {"inputText": "Hello world"},
              "error": {"errorCode": 400, "errorMessage": "bad request"}}
    manifest = {"totalRecordCount": 2, "processedRecordCount": 2, "successRecordCount": 1, "errorRecordCount": 1,
                "inputTokenCount": 254, "outputTokenCount": 127}
    summary, sink = meter_lines([failed, manifest], {"default_subscription": "sub_1"})
    assert sink.events == [] and sink.dead_letters == []
    assert summary.skipped == {FAILED_REQUEST: 1, "batch_summary": 1}


def test_a_bedrock_batch_line_without_a_model_is_a_dead_letter_that_says_why():
    titan = {"recordId": "3223593EFGH", "modelInput": {"inputText": "Roses are red, violets are"},
             "modelOutput": {"inputTextTokenCount": 8, "results": [{"tokenCount": 3, "outputText": "blue\n",
                                                                    "completionReason": "FINISH"}]}}
    summary, sink = meter_lines([titan], {"default_subscription": "sub_1"})
    assert [d.reason for d in sink.dead_letters] == ["invalid_record"]
    assert "names no model" in sink.dead_letters[0].detail


GEMINI_RESPONSE = {"candidates": [{"content": {"parts": [{"text": "yo"}], "role": "model"}, "finishReason": "STOP"}],
                   "modelVersion": "gemini-2.5-flash",
                   "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}}


def test_google_batch_lines_bill_their_response_and_failed_ones_nothing():
    # Vertex AI's output line ({"status": "", "processed_time", "request", "response"}), the Gemini API's ({"key",
    # "response"}): each bills its response; a failed request's line (Vertex: the error in `status` and no
    # response; the Gemini API: `error` in place of the response) bills nothing, as neither bills it.
    vertex = {"status": "", "processed_time": "2024-11-01T18:13:16.826+00:00",
              "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "response": GEMINI_RESPONSE}
    gemini = {"key": "request-1", "response": GEMINI_RESPONSE}
    for line in (vertex, gemini):
        assert read_inference(line).counts == {"input": 9, "cached_input": 0, "output": 3, "reasoning": 0}
    failed = [{**vertex, "status": "Bad Request: {\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\"}}",
               "response": None},
              {"key": "request-2", "error": {"code": 400, "message": "Invalid argument", "status": "INVALID_ARGUMENT"}}]
    for line in failed:
        with pytest.raises(NothingToBill, match=FAILED_REQUEST):
            read_inference(line)


@pytest.mark.parametrize(("named", "model"), [
    ("gemini-2.0-flash-001@default", "gemini-2.0-flash-001"),  # Vertex AI's batch output: the default version
    ("publishers/google/models/gemini-2.0-flash-001@default", "gemini-2.0-flash-001"),
    ("projects/p-1/locations/us-central1/publishers/google/models/gemini-2.0-flash-001", "gemini-2.0-flash-001"),
    ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2@20241022"),  # a version of its own stays in the name
    ("gemini-2.0-flash-001", "gemini-2.0-flash-001"),
])
def test_a_vertex_batch_line_bills_under_the_model_the_online_call_names(named, model):
    line = {"status": "", "processed_time": "2024-11-01T18:13:16.826+00:00", "request": {},
            "response": {**GEMINI_RESPONSE, "modelVersion": named}}
    assert read_inference(line).model == model
