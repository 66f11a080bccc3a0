"""Bedrock's runtime API as an app logs it (InvokeModel bodies, streams, ConverseStream events), read into
disjoint token types. Shapes from each model family's documented request and response fields in the Bedrock
user guide; expected splits worked out by hand."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

NOVA = "us.amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"


def test_nova_invoke_body_bills_its_cache_reads_and_writes_spelled_as_the_invocation_log_spells_them():
    body = {"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 120, "outputTokens": 30, "totalTokens": 2650, "cacheReadInputTokenCount": 2000,
                      "cacheWriteInputTokenCount": 500},
            "modelId": NOVA}
    inference = read_inference(body)
    # inputTokens is the uncached part: 120 + 2000 + 500 + 30 = 2650, the total Nova reports.
    assert inference.counts == {"input": 120, "cached_input": 2000, "cache_write": 500, "output": 30}
    assert inference.model == "amazon.nova-lite-v1:0"  # the cross-region profile's id names the model


def test_llama_body_bills_its_prompt_and_generation_counts():
    body = {"generation": "Paris.", "prompt_token_count": 24, "generation_token_count": 3, "stop_reason": "stop",
            "modelId": LLAMA, "requestId": "c1b3a7e2-5d4f-4e8a-9b6c-7d8e9f0a1b2c"}
    inference = read_inference(body)
    assert (inference.model, inference.request_id, inference.counts) == (
        LLAMA, "c1b3a7e2-5d4f-4e8a-9b6c-7d8e9f0a1b2c", {"input": 24, "output": 3})


def test_a_streamed_llama_response_bills_once_from_its_last_chunks_invocation_metrics():
    first = {"generation": "Par", "prompt_token_count": 24, "generation_token_count": 1, "stop_reason": None,
             "modelId": LLAMA}
    middle = {"generation": "is", "prompt_token_count": None, "generation_token_count": 2, "stop_reason": None,
              "modelId": LLAMA}
    last = {"generation": ".", "prompt_token_count": None, "generation_token_count": 3, "stop_reason": "stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 24, "outputTokenCount": 3,
                                                 "invocationLatency": 412, "firstByteLatency": 180},
            "modelId": LLAMA}
    for chunk in (first, middle):
        with pytest.raises(NothingToBill, match="stream_chunk"):
            read_inference(chunk)
    assert read_inference(last).counts == {"input": 24, "cached_input": 0, "cache_write": 0, "output": 3}
    # Logged without its metrics, the last chunk no longer says what the prompt cost: a clear error, not output alone.
    stripped = {key: value for key, value in last.items() if key != "amazon-bedrock-invocationMetrics"}
    with pytest.raises(RecordError, match="prompt_token_count is missing") as error:
        read_inference(stripped)
    assert error.value.reason == "invalid_counts"


def test_titan_text_body_bills_its_input_and_every_results_tokens():
    body = {"inputTextTokenCount": 9, "results": [{"tokenCount": 41, "outputText": "...", "completionReason": "FINISH"}],
            "modelId": "amazon.titan-text-express-v1"}
    assert read_inference(body).counts == {"input": 9, "output": 41}


def test_titan_text_streamed_bills_the_running_total_of_its_last_chunk():
    chunk = {"outputText": "Hel", "index": 0, "inputTextTokenCount": 9, "totalOutputTextTokenCount": 2,
             "completionReason": None, "modelId": "amazon.titan-text-lite-v1"}
    with pytest.raises(NothingToBill, match="stream_chunk"):
        read_inference(chunk)
    last = {**chunk, "outputText": "lo", "totalOutputTextTokenCount": 5, "completionReason": "FINISH"}
    assert read_inference(last).counts == {"input": 9, "output": 5}


def test_titan_embeddings_bill_their_input():
    body = {"embedding": [0.012, -0.4], "inputTextTokenCount": 7, "modelId": "amazon.titan-embed-text-v2:0"}
    assert read_inference(body).counts == {"input": 7}


def test_converse_stream_bills_its_metadata_event_and_counts_the_rest_as_parts():
    for event in ({"messageStart": {"role": "assistant"}}, {"contentBlockDelta": {"delta": {"text": "Hi"},
                                                                                    "contentBlockIndex": 0}},
                  {"contentBlockStop": {"contentBlockIndex": 0}}, {"messageStop": {"stopReason": "end_turn"}}):
        with pytest.raises(NothingToBill, match="stream_chunk"):
            read_inference({**event, "modelId": NOVA})
    metadata = {"metadata": {"usage": {"inputTokens": 25, "outputTokens": 40, "totalTokens": 165,
                                       "cacheReadInputTokens": 100}, "metrics": {"latencyMs": 830}},
                "modelId": NOVA}
    assert read_inference(metadata).counts == {"input": 25, "cached_input": 100, "cache_write": 0, "output": 40}


def test_mistral_body_without_counts_is_a_clear_error_and_its_chunks_are_parts():
    with pytest.raises(NothingToBill, match="stream_chunk"):
        read_inference({"outputs": [{"text": "Bon", "stop_reason": None}], "modelId": "mistral.mistral-large-2402-v1:0"})
    with pytest.raises(RecordError, match="carries no token counts"):
        read_inference({"outputs": [{"text": "Bonjour", "stop_reason": "stop"}], "modelId": "mistral.mistral-large-2402-v1:0"})
    last = {"outputs": [{"text": "", "stop_reason": "stop"}], "modelId": "mistral.mistral-large-2402-v1:0",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11, "outputTokenCount": 57}}
    assert read_inference(last).counts == {"input": 11, "cached_input": 0, "cache_write": 0, "output": 57}


def test_a_body_logged_without_its_model_is_a_clear_error():
    with pytest.raises(RecordError, match="names no model") as error:
        read_inference({"generation": "x", "prompt_token_count": 3, "generation_token_count": 1, "stop_reason": "stop"})
    assert error.value.reason == "invalid_record"


def test_an_apps_own_metadata_is_not_taken_for_a_converse_stream_event():
    record = {"model": "gpt-4o", "metadata": {"customer": "sub_1", "usage": {"plan": "pro"}},
              "usage": {"prompt_tokens": 10, "completion_tokens": 2}}
    assert read_inference(record).counts["output"] == 2


@pytest.mark.parametrize(("model_id", "model"), [
    ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0"),
    ("us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
])
def test_cross_region_profile_ids_name_their_model(model_id, model):
    record = {"usage": {"inputTokens": 1, "outputTokens": 1}, "modelId": model_id}
    assert read_inference(record).model == model


def test_a_call_logged_by_the_app_with_its_profile_id_and_by_bedrock_with_the_profiles_arn_bills_once():
    request_id = "8e0b3f1a-2c4d-4e6f-8a0b-1c2d3e4f5a6b"
    invocation_log = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-28T07:30:00Z",
        "accountId": "123456789012", "region": "us-east-1", "requestId": request_id, "operation": "Converse",
        "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "input": {"inputTokenCount": 30, "cacheReadInputTokenCount": 400}, "output": {"outputTokenCount": 60}}
    app_log = {"ResponseMetadata": {"RequestId": request_id, "HTTPHeaders": {"date": "Sat, 28 Nov 2026 07:30:00 GMT"}},
               "usage": {"inputTokens": 30, "outputTokens": 60, "totalTokens": 490, "cacheReadInputTokens": 400},
               "modelId": "us.anthropic.claude-3-7-sonnet-20250219-v1:0"}
    _, sink = meter_lines([invocation_log, app_log], {"default_subscription": "sub_1"})
    ids = [event.transaction_id for event in sink.events]
    assert len(ids) == 6 and len(set(ids)) == 3  # input, cached_input, output: the same three ids twice
    assert {(e.properties["token_type"], e.properties["tokens"]) for e in sink.events} == {
        ("input", 30), ("cached_input", 400), ("output", 60)}
    assert {e.properties["model"] for e in sink.events} == {"anthropic.claude-3-7-sonnet-20250219-v1:0"}
    assert {e.timestamp for e in sink.events} == {"1795851000.000"}


ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
ROUTED = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"


def test_a_prompt_routed_call_bills_the_model_the_router_chose_logged_either_way_once():
    # Converse through an intelligent prompt router: the answer's trace names the model that served the call
    # (PromptRouterTrace.invokedModelId, a profile ARN), whose price applies; the router's id names a family.
    request_id = "4f1d2c3b-5a6e-4b7c-8d9e-0a1b2c3d4e5f"
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 14, "outputTokens": 3, "totalTokens": 17}, "metrics": {"latencyMs": 310},
              "trace": {"promptRouter": {"invokedModelId": ROUTED}}}
    invocation_log = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-28T07:30:00Z",
        "accountId": "123456789012", "region": "us-east-1", "requestId": request_id, "operation": "Converse",
        "modelId": ROUTER, "input": {"inputContentType": "application/json", "inputTokenCount": 14},
        "output": {"outputContentType": "application/json", "outputTokenCount": 3, "outputBodyJson": answer}}
    app_log = {**answer, "modelId": ROUTER,
               "ResponseMetadata": {"RequestId": request_id, "HTTPHeaders": {"date": "Sat, 28 Nov 2026 07:30:00 GMT"}}}
    _, sink = meter_lines([invocation_log, app_log], {"default_subscription": "sub_1"})
    assert {e.properties["model"] for e in sink.events} == {"anthropic.claude-3-5-haiku-20241022-v1:0"}
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events) == [
        ("input", 14), ("input", 14), ("output", 3), ("output", 3)]
    assert len({e.transaction_id for e in sink.events}) == 2  # the same call: the same two ids both ways


def test_a_routed_converse_stream_bills_the_chosen_model_from_its_metadata_events_trace():
    metadata = {"metadata": {"usage": {"inputTokens": 14, "outputTokens": 3, "totalTokens": 17},
                             "metrics": {"latencyMs": 310}, "trace": {"promptRouter": {"invokedModelId": ROUTED}}},
                "modelId": ROUTER}
    assert read_inference(metadata).model == "anthropic.claude-3-5-haiku-20241022-v1:0"
    # Without a trace nothing says which model served it: the router's own name, as before.
    del metadata["metadata"]["trace"]
    assert read_inference(metadata).model == "anthropic.claude:1"


def test_an_application_inference_profile_bills_as_the_model_the_config_names_under_the_same_ids():
    # Bedrock's invocation log names a call through an application inference profile by the profile's ARN, which
    # names no model (its id is random); the config names the model it routes to.
    profile = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/k2v4x9pq7rla"
    log = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-28T10:00:00Z",
           "accountId": "111122223333", "region": "us-east-1", "requestId": "7c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
           "operation": "Converse", "modelId": profile,
           "input": {"inputContentType": "application/json", "inputTokenCount": 310},
           "output": {"outputContentType": "application/json", "outputTokenCount": 42},
           "requestMetadata": {"subscription_id": "sub_acme"}}
    sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    _, named = meter_lines([log], {"model_names": {profile: sonnet}})
    _, unnamed = meter_lines([log], {})
    assert {(e.properties["token_type"], e.properties["tokens"], e.properties["model"]) for e in named.events} == {
        ("input", 310, sonnet), ("output", 42, sonnet)}
    assert {e.properties["model"] for e in unnamed.events} == {"k2v4x9pq7rla"}  # the profile's id, as before
    # The same call's ids with or without the name: naming a profile later re-bills nothing already sent.
    assert sorted(e.transaction_id for e in named.events) == sorted(e.transaction_id for e in unnamed.events)
