"""Cohere's own API as an app logs it: shapes from Cohere's API reference (v2 /chat and its stream events, v1
/chat, /embed, /rerank); expected counts worked out by hand from what each field means."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

V2_CHAT = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "finish_reason": "COMPLETE",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "LLMs are ..."}]},
    # tokens counts the prompt template and default preamble Cohere adds (and does not bill).
    "usage": {"billed_units": {"input_tokens": 17, "output_tokens": 418},
              "tokens": {"input_tokens": 215, "output_tokens": 418}},
    "model": "command-a-03-2025",
}


def test_v2_chat_bills_what_cohere_bills():
    inference = read_inference(V2_CHAT)
    assert (inference.model, inference.request_id, inference.counts) == (
        "command-a-03-2025", "c14c80c3-18eb-4519-9460-6c92edd8cfb4", {"input": 17, "output": 418})


def test_processed_tokens_are_taken_only_where_no_billed_tokens_are_given():
    record = {**V2_CHAT, "usage": {"tokens": {"input_tokens": 215, "output_tokens": 418}}}
    assert read_inference(record).counts == {"input": 215, "output": 418}


def test_v1_chat_and_embed_bill_from_meta():
    chat = {"response_id": "5b3e2a4c-9d1f-4c2b-8e7a-6f5d4c3b2a19", "text": "Hi!", "generation_id": "g-1",
            "finish_reason": "COMPLETE", "model": "command-r-plus",
            "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 12, "output_tokens": 3},
                     "tokens": {"input_tokens": 80, "output_tokens": 3}}}
    inference = read_inference(chat)
    assert (inference.request_id, inference.counts) == ("5b3e2a4c-9d1f-4c2b-8e7a-6f5d4c3b2a19", {"input": 12, "output": 3})
    embed = {"id": "da6e531f-83c6-4a9f-9a24-6a4c8d1d0b21", "embeddings": {"float": [[0.1, 0.2]]}, "texts": ["hello"],
             "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
             "model": "embed-english-v3.0"}
    assert read_inference(embed).counts == {"input": 2, "output": 0}


def test_units_that_are_not_tokens_bill_nothing():
    rerank = {"id": "r-1", "results": [{"index": 0, "relevance_score": 0.9}], "model": "rerank-v3.5",
              "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference(rerank)


def test_a_v2_stream_bills_its_message_end_once_and_counts_the_rest_as_parts():
    parts = [{"type": "message-start", "id": "29f14a5a-11de-4cae-9800-25e4747408ea",
              "delta": {"message": {"role": "assistant"}}},
             {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
             {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello"}}}},
             {"type": "content-end", "index": 0}]
    end = {"type": "message-end", "delta": {"finish_reason": "COMPLETE",
                                            "usage": {"billed_units": {"input_tokens": 9, "output_tokens": 2},
                                                      "tokens": {"input_tokens": 200, "output_tokens": 2}}}}
    model = {"model": "command-r7b-12-2024"}
    summary, sink = meter_lines([{**event, **model} for event in [*parts, end]], {"default_subscription": "sub_1"})
    assert summary.skipped["stream_chunk"] == 4 and not sink.dead_letters
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events) == [("input", 9),
                                                                                                 ("output", 2)]


def test_a_v1_stream_bills_the_response_its_stream_end_carries():
    start = {"event_type": "stream-start", "generation_id": "g-7", "is_finished": False, "model": "command-r"}
    text = {"event_type": "text-generation", "text": "Hi", "is_finished": False, "model": "command-r"}
    end = {"event_type": "stream-end", "is_finished": True, "finish_reason": "COMPLETE", "model": "command-r",
           "response": {"response_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "text": "Hi", "generation_id": "g-7",
                        "meta": {"billed_units": {"input_tokens": 5, "output_tokens": 1}}}}
    for part in (start, text):
        with pytest.raises(NothingToBill, match="stream_chunk"):
            read_inference(part)
    inference = read_inference(end)
    assert (inference.request_id, inference.counts) == ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", {"input": 5, "output": 1})


def test_an_answer_logged_without_its_model_or_its_counts_is_a_clear_error():
    without_model = {key: value for key, value in V2_CHAT.items() if key != "model"}
    with pytest.raises(RecordError, match="names no model") as error:
        read_inference(without_model)
    assert error.value.reason == "invalid_record"
    with pytest.raises(RecordError, match="usage.billed_units.input_tokens must be a whole number") as error:
        read_inference({**V2_CHAT, "usage": {"billed_units": {"input_tokens": "17", "output_tokens": 418}}})
    assert error.value.reason == "invalid_counts"
    with pytest.raises(RecordError, match="delta.usage has no token counts"):
        read_inference({"type": "message-end", "delta": {"finish_reason": "ERROR"}, "model": "command-a-03-2025"})


def test_the_javascript_sdks_camel_case_answers_read_alike():
    # cohere-ai (JavaScript) gives the same answers with camelCase keys.
    v2 = {"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finishReason": "COMPLETE", "model": "command-a-03-2025",
          "usage": {"billedUnits": {"inputTokens": 17, "outputTokens": 418},
                    "tokens": {"inputTokens": 215, "outputTokens": 418}}}
    assert read_inference(v2).counts == {"input": 17, "output": 418}
    end = {"eventType": "stream-end", "isFinished": True, "model": "command-r",
           "response": {"responseId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                        "meta": {"billedUnits": {"inputTokens": 5, "outputTokens": 1}}}}
    inference = read_inference(end)
    assert (inference.request_id, inference.counts) == ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", {"input": 5, "output": 1})
    with pytest.raises(NothingToBill, match="stream_chunk"):
        read_inference({"eventType": "text-generation", "text": "Hi", "isFinished": False, "model": "command-r"})


def test_an_sdk_dump_with_its_counts_as_floats_reads_alike():
    # cohere-python's models type the counts as floats: response.model_dump() logs 17.0. A fraction is refused.
    dumped = {**V2_CHAT, "usage": {"billed_units": {"input_tokens": 17.0, "output_tokens": 418.0, "search_units": None},
                                   "tokens": {"input_tokens": 215.0, "output_tokens": 418.0}}}
    assert read_inference(dumped).counts == {"input": 17, "output": 418}
    with pytest.raises(RecordError, match="whole number"):
        read_inference({**V2_CHAT, "usage": {"billed_units": {"input_tokens": 17.5, "output_tokens": 418}}})
