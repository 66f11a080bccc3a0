"""Gemini, LiteLLM and the modality token types, read into disjoint token types. Records follow the
providers' documented examples (reference/inference-logs.md, "More sources users have"); the splits are
worked out by hand in each test."""

import pytest

from tokenmeter.metering.fields import NothingToBill
from tokenmeter.metering.formats import read_inference
from tokenmeter.metering.records import RecordError

GEMINI = {
    "candidates": [{"content": {"parts": [{"text": "The answer is 42."}], "role": "model"}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 310, "totalTokenCount": 1284,
                      "thoughtsTokenCount": 962, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mAitaLmkHPPlz7IPvtfUqQ4",
}


def test_gemini_thoughts_are_reasoning_beside_the_candidates():
    inference = read_inference(GEMINI)
    assert inference.model == "gemini-2.5-flash"
    assert inference.request_id == "mAitaLmkHPPlz7IPvtfUqQ4"
    # 12 + 310 + 962 = 1284, the reported total.
    assert inference.counts == {"input": 12, "cached_input": 0, "output": 310, "reasoning": 962}


def test_gemini_cache_tool_use_and_audio_split_disjointly():
    usage = {"promptTokenCount": 1000, "cachedContentTokenCount": 500, "toolUsePromptTokenCount": 20,
             "candidatesTokenCount": 50, "totalTokenCount": 1070,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 600}, {"modality": "AUDIO", "tokenCount": 400}],
             "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 300}, {"modality": "AUDIO", "tokenCount": 200}],
             "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 50}]}
    counts = read_inference({**GEMINI, "usageMetadata": usage}).counts
    # Uncached audio 400 - 200 = 200; text input 1000 + 20 tool-use - 500 cached - 200 audio = 320.
    assert counts == {"input": 320, "cached_input": 500, "input_audio": 200, "output": 50, "reasoning": 0}
    assert sum(counts.values()) == 1070


def test_a_gemini_response_as_the_google_genai_sdk_dumps_it_is_read_as_gemini_not_langchain():
    # response.model_dump(mode="json"): the same fields in snake_case. Its usage_metadata was read as LangChain's.
    dumped = {"candidates": [{"content": {"parts": [{"text": "The answer is 42."}], "role": "model"},
                              "finish_reason": "STOP", "avg_logprobs": None, "index": 0}],
              "create_time": None, "response_id": "mAitaLmkHPPlz7IPvtfUqQ4", "model_version": "gemini-2.5-flash",
              "prompt_feedback": None, "automatic_function_calling_history": [], "parsed": None,
              "usage_metadata": {"cache_tokens_details": [{"modality": "AUDIO", "token_count": 100}],
                                 "cached_content_token_count": 300, "candidates_token_count": 310,
                                 "candidates_tokens_details": None, "prompt_token_count": 1012,
                                 "prompt_tokens_details": [{"modality": "TEXT", "token_count": 812},
                                                           {"modality": "AUDIO", "token_count": 200}],
                                 "thoughts_token_count": 962, "tool_use_prompt_token_count": None,
                                 "total_token_count": 2284, "traffic_type": None}}
    inference = read_inference(dumped)
    assert (inference.model, inference.request_id) == ("gemini-2.5-flash", "mAitaLmkHPPlz7IPvtfUqQ4")
    # Input: 1,012 prompt tokens, 300 from the cache (100 of them audio): audio 200 - 100 = 100 uncached,
    # text 1,012 - 300 - 100 = 612. Output 310, thoughts 962 beside it.
    assert {k: v for k, v in inference.counts.items() if v} == {"input": 612, "cached_input": 300, "input_audio": 100,
                                                                "output": 310, "reasoning": 962}
    with pytest.raises(NothingToBill, match="not_final"):  # a streamed chunk before the last, as the SDK gives it
        read_inference({**dumped, "candidates": [{**dumped["candidates"][0], "finish_reason": None}]})


def test_gemini_image_output_and_vertex_wrapper():
    usage = {"promptTokenCount": 8, "candidatesTokenCount": 1300,
             "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}, {"modality": "TEXT", "tokenCount": 10}],
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}, {"modality": "IMAGE", "tokenCount": 3}]}
    record = {"request": {"contents": []}, "response": {**GEMINI, "usageMetadata": usage,
                                                        "createTime": "2025-06-01T10:00:00.250Z"}}
    inference = read_inference(record)
    assert inference.counts == {"input": 5, "cached_input": 0, "input_image": 3, "output": 10, "reasoning": 0,
                                "output_image": 1290}
    assert inference.timestamp_ms == 1_748_772_000_250


def test_gemini_stream_bills_only_its_last_chunk():
    chunk = {"candidates": [{"content": {"parts": [{"text": "The"}], "role": "model"}, "index": 0}],
             "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}, "modelVersion": "gemini-2.5-flash",
             "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"}
    with pytest.raises(NothingToBill, match="not_final"):
        read_inference(chunk)
    last = {**chunk, "candidates": [{"content": {"parts": [{"text": " end."}], "role": "model"}, "finishReason": "STOP",
                                     "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 40, "totalTokenCount": 52}}
    assert read_inference(last).counts == {"input": 12, "cached_input": 0, "output": 40, "reasoning": 0}


def test_google_adk_events_of_a_streamed_turn_bill_its_aggregated_event_only():
    # ADK's SSE streaming (google_llm.py): each text chunk is an event marked partial, with the chunk's usage so
    # far; the aggregated event after them carries the last usage and is not partial. As ADK dumps events.
    partial = {"content": {"parts": [{"text": "The"}], "role": "model"}, "partial": True,
               "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 1, "totalTokenCount": 101},
               "modelVersion": "gemini-2.5-flash", "invocationId": "e-2b4c7a1f", "author": "assistant_agent",
               "id": "x8Yz1AbC", "timestamp": 1732646400.123}
    aggregated = {**partial, "partial": False, "id": "x8Yz1AbE",
                  "content": {"parts": [{"text": "The answer."}], "role": "model"},
                  "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 5, "totalTokenCount": 105}}
    with pytest.raises(NothingToBill, match="not_final"):
        read_inference(partial)
    snake = {"partial": True, "usage_metadata": {"prompt_token_count": 100, "candidates_token_count": 1},
             "model_version": "gemini-2.5-flash", "invocation_id": "e-2b4c7a1f"}
    with pytest.raises(NothingToBill, match="not_final"):
        read_inference(snake)
    assert read_inference(aggregated).counts == {"input": 100, "cached_input": 0, "output": 5, "reasoning": 0}


@pytest.mark.parametrize("usage", [
    {"promptTokenCount": 10, "cachedContentTokenCount": 11},
    {"promptTokenCount": -1},
    {"promptTokenCount": 10, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 11}]},
    {"promptTokenCount": 10, "promptTokensDetails": {"modality": "AUDIO"}},
])
def test_gemini_impossible_counts_are_errors(usage):
    with pytest.raises(RecordError):
        read_inference({**GEMINI, "usageMetadata": usage})


def test_openai_audio_tokens_are_their_own_types():
    record = {"id": "chatcmpl-ASKBlkXmB1hXyhKnKeZq3Y5B7xUDz", "object": "chat.completion", "created": 1731434625,
              "model": "gpt-4o-audio-preview-2024-10-01",
              "usage": {"prompt_tokens": 17, "completion_tokens": 84, "total_tokens": 101,
                        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 68,
                                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}}
    # 84 completion tokens, 68 of them audio: 16 text.
    assert read_inference(record).counts == {"input": 17, "cached_input": 0, "output": 16, "reasoning": 0,
                                             "output_audio": 68}


def test_openai_image_input_tokens_from_the_images_endpoint():
    record = {"request": {"model": "gpt-image-1", "prompt": "a lighthouse"},
              "response": {"created": 1713833628, "data": [{"b64_json": "..."}],
                           "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
                                     "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}},
              "user": "sub_img"}
    inference = read_inference(record)
    assert inference.model == "gpt-image-1"
    assert inference.counts == {"input": 10, "cached_input": 0, "input_image": 40, "output": 50, "reasoning": 0}
    assert inference.timestamp_ms == 1_713_833_628_000  # the answer's `created`, not the time it was logged


@pytest.mark.parametrize(("status", "reason"), [("queued", "not_final"), ("in_progress", "not_final"),
                                                ("cancelled", "no_usage")])
def test_a_responses_api_response_without_usage_bills_nothing_and_says_why(status, reason):
    # Background mode: an app that logs each poll logs the response queued, then in progress, then completed;
    # only the completed one carries usage (the OpenAI API reference's background example).
    polled = {"id": "resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b", "object": "response",
              "created_at": 1756315696, "status": status, "background": True, "model": "o3-2025-04-16",
              "output": [], "usage": None}
    with pytest.raises(NothingToBill) as nothing:
        read_inference(polled)
    assert nothing.value.reason == reason


def test_modality_past_its_whole_is_an_error():
    record = {"id": "chatcmpl-ASKBlkXmB1hXyhKnKeZq3Y5B7xUDz", "model": "gpt-4o-audio-preview", "created": 1,
              "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                        "prompt_tokens_details": {"cached_tokens": 6, "audio_tokens": 6}}}
    with pytest.raises(RecordError, match="exceed the input tokens"):
        read_inference(record)


LITELLM = {
    "id": "chatcmpl-2299b6a3-1637-4e50-91b9-2e6aa5c9ba40",
    "trace_id": "97fdc6e1-6a79-4d3c-8d6b-1a8c7a4a1e2b",
    "call_type": "acompletion",
    "cache_hit": None,
    "stream": False,
    "status": "success",
    "custom_llm_provider": "openai",
    "startTime": 1735254386.762,
    "endTime": 1735254387.274,
    "completionStartTime": 1735254387.274,
    "response_time": 0.512,
    "model": "gpt-4o",
    "metadata": {"user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                 "user_api_key_alias": None, "user_api_key_team_id": "team-acme", "user_api_key_org_id": None,
                 "user_api_key_user_id": "user-7", "user_api_key_team_alias": "acme",
                 "user_api_key_end_user_id": "cust-9", "requester_ip_address": "", "spend_logs_metadata": None},
    "cache_key": None,
    "response_cost": 0.0021,
    "total_tokens": 1250,
    "prompt_tokens": 1100,
    "completion_tokens": 150,
    "request_tags": [],
    "end_user": "cust-9",
    "api_base": "https://api.openai.com/v1",
    "model_group": "gpt-4o",
    "model_id": "a3f5c1",
    "response": {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", "created": 1735254387,
                 "model": "gpt-4o-2024-08-06", "object": "chat.completion",
                 "usage": {"completion_tokens": 150, "prompt_tokens": 1100, "total_tokens": 1250,
                           "completion_tokens_details": {"reasoning_tokens": 40, "audio_tokens": 0},
                           "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0}}},
}


def test_litellm_payload_splits_from_the_embedded_response():
    inference = read_inference(LITELLM)
    assert inference.request_id == LITELLM["id"]
    assert inference.model == "gpt-4o-2024-08-06"
    assert inference.timestamp_ms == 1_735_254_387_274
    # 1100 - 1024 cached = 76; 150 - 40 reasoning = 110.
    assert inference.counts == {"input": 76, "cached_input": 1024, "output": 110, "reasoning": 40}


def test_litellm_failures_are_skipped_and_cache_hits_follow_the_switch():
    with pytest.raises(NothingToBill, match="failed_call"):
        read_inference({**LITELLM, "status": "failure", "prompt_tokens": 0, "completion_tokens": 0})
    with pytest.raises(NothingToBill, match="proxy_cache_hit"):
        read_inference({**LITELLM, "cache_hit": True})
    assert read_inference({**LITELLM, "cache_hit": True}, bill_proxy_cache_hits=True).counts["input"] == 76


def test_litellm_anthropic_cache_writes_inside_the_prompt_in_newer_releases():
    # Anthropic reported input 20, cache read 1000, cache write 300: newer LiteLLM sums all three into prompt_tokens.
    response = {"model": "claude-sonnet-4-20250514", "usage": {
        "prompt_tokens": 1320, "completion_tokens": 80, "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1000,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 300}}}
    record = {**LITELLM, "prompt_tokens": 1320, "completion_tokens": 80, "response": response}
    assert read_inference(record).counts == {"input": 20, "cached_input": 1000, "cache_write": 300, "output": 80,
                                             "reasoning": 0}


def test_litellm_anthropic_cache_writes_beside_the_prompt_in_older_releases():
    # Older LiteLLM: prompt_tokens = input 20 + cache read 1000; the 300 written were reported beside.
    response = {"model": "claude-3-5-sonnet-20241022", "usage": {
        "prompt_tokens": 1020, "completion_tokens": 80, "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1000, "prompt_tokens_details": {"cached_tokens": 1000}}}
    record = {**LITELLM, "prompt_tokens": 1020, "completion_tokens": 80, "response": response}
    assert read_inference(record).counts == {"input": 20, "cached_input": 1000, "output": 80, "reasoning": 0,
                                             "cache_write": 300}


def test_litellm_without_a_provider_response_bills_its_own_counts():
    record = {**LITELLM, "response": None}
    assert read_inference(record).counts == {"input": 1100, "cached_input": 0, "output": 150, "reasoning": 0}
    assert read_inference(record).model == "gpt-4o"


# A row of LiteLLM's spend logs (its LiteLLM_SpendLogs table, as /spend/logs answers or an export writes it).
SPEND_LOG = {"request_id": "chatcmpl-9d8e7f6a5b4c3d2e1f0a9b8c", "call_type": "acompletion", "api_key": "88dc28d0f0",
             "spend": 0.00071, "total_tokens": 1250, "prompt_tokens": 1100, "completion_tokens": 150,
             "startTime": "2024-12-26T23:06:26.120Z", "endTime": "2024-12-26T23:06:27.274Z",
             "model": "gpt-4o-2024-08-06", "model_group": "gpt-4o", "custom_llm_provider": "openai", "user": "",
             "end_user": "cust-9", "metadata": {"user_api_key_team_id": "t1"}, "cache_hit": "False", "cache_key": "",
             "request_tags": [], "messages": {}, "response": {}}


def test_a_litellm_spend_log_row_bills_its_counts_at_its_end_time():
    inference = read_inference(SPEND_LOG)  # rows written before LiteLLM logged a status: calls that succeeded
    assert (inference.model, inference.request_id) == ("gpt-4o-2024-08-06", "chatcmpl-9d8e7f6a5b4c3d2e1f0a9b8c")
    assert inference.timestamp_ms == 1_735_254_387_274  # 2024-12-26T23:06:27.274Z
    assert {k: v for k, v in inference.counts.items() if v} == {"input": 1100, "output": 150}
    assert read_inference({**SPEND_LOG, "status": "success"}).counts == inference.counts
    with pytest.raises(NothingToBill, match="failed_call"):
        read_inference({**SPEND_LOG, "status": "failure"})
    with pytest.raises(NothingToBill, match="proxy_cache_hit"):
        read_inference({**SPEND_LOG, "cache_hit": "True"})


@pytest.mark.parametrize("change", [{"status": "pending"}, {"prompt_tokens": -5}, {"prompt_tokens": 10.5},
                                    {"endTime": "yesterday"}])
def test_litellm_bad_payloads_are_errors(change):
    with pytest.raises(RecordError):
        read_inference({**LITELLM, **change})


@pytest.mark.parametrize("answer", [
    {"object": "response.input_tokens", "input_tokens": 11},  # OpenAI's POST /v1/responses/input_tokens
    {"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]},  # Gemini's countTokens
])
def test_a_free_token_count_bills_nothing(answer):
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference(answer)


def test_a_bare_input_count_is_still_a_dead_letter():
    # Anthropic's count_tokens answer is {"input_tokens": n} alone, as is a usage logged without its response:
    # the operator has to see the latter.
    with pytest.raises(RecordError) as error:
        read_inference({"input_tokens": 2095})
    assert error.value.reason == "unknown_format"


def test_a_gemini_live_turns_response_tokens_are_billed():
    # A Live API server message's usage (as the raw wire shows it in a report to Google's forum), logged with the
    # model the session was set up with: the response is responseTokenCount, here all audio.
    message = {"usageMetadata": {"promptTokenCount": 522, "responseTokenCount": 42, "totalTokenCount": 564,
                                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 332},
                                                         {"modality": "AUDIO", "tokenCount": 165}],
                                 "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 42}]},
               "model": "gemini-live-2.5-flash-preview"}
    assert read_inference(message).counts == {"input": 357, "cached_input": 0, "input_audio": 165,
                                              "output": 0, "reasoning": 0, "output_audio": 42}
