"""SageMaker AI's Data Capture lines (the format SageMaker documents: captureData.endpointInput / endpointOutput with
data and encoding, eventMetadata), from LLM containers' OpenAI-compatible routes. Counts worked out by hand."""

import base64
import json

from conftest import Collect

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

KEY = "datacapture/llama-chat-prod/AllTraffic/2026/04/29/00/3f1c0d9e-4e55-4b1e-9d0b-7a1f2c3d4e5f.jsonl"
EVENT = "e4378ff2-2b43-4031-a21f-401bb3c3e038"
REQUEST = {"messages": [{"role": "user", "content": "What is AI?"}], "max_tokens": 50}


def answer(model: str, response_id: str = "chatcmpl-8d4f1c2b9a7e4f0c", **more) -> dict:
    return {"id": response_id, "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "AI is..."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}, **more}


def line(output: bytes | str, encoding: str = "JSON", content_type: str = "application/json", **metadata) -> dict:
    data = base64.b64encode(output).decode() if encoding == "BASE64" else output
    return {"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(REQUEST),
                          "encoding": "JSON"},
        "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": data, "encoding": encoding}},
        "eventMetadata": {"eventId": EVENT, "inferenceTime": "2026-04-29T00:03:18Z", **metadata}, "eventVersion": "0"}


def meter(*lines, key: str = KEY, config: dict | None = None):
    parsed = parse_config(config or {"default_subscription": "sub_1"})
    sink = Collect()
    m = Meter(parsed, TokenizerPool({}), sink)
    for number, value in enumerate(lines, 1):
        m.add(RawRecord(f"s3://captures/{key}#line={number}", f"s3:captures/{key}@etag#{number}", json.dumps(value),
                        1_777_777_777_000))
    return m.finish(), sink


def billed(sink) -> list[tuple]:
    return sorted((e.external_subscription_id, e.properties["model"], e.properties["token_type"], e.properties["tokens"],
                   e.timestamp) for e in sink.events)


def test_an_openai_compatible_answer_bills_under_the_model_it_names():
    summary, sink = meter(line(json.dumps(answer("meta-llama/Llama-3.1-8B-Instruct", created=1777420998))))
    assert billed(sink) == [("sub_1", "meta-llama/Llama-3.1-8B-Instruct", "input", 12, "1777420998.000"),
                            ("sub_1", "meta-llama/Llama-3.1-8B-Instruct", "output", 30, "1777420998.000")]
    assert summary.metered == 1 and not sink.dead_letters


def test_a_container_that_names_no_model_bills_under_its_endpoint_at_the_captures_time():
    # TGI's Messages API: id "" and the container's path for a model, no time; base64, as captured by default.
    tgi = answer("/opt/ml/model", response_id="", system_fingerprint="3.0.1-native")
    summary, sink = meter(line(json.dumps(tgi).encode(), encoding="BASE64"),
                          line(json.dumps(tgi).encode(), encoding="BASE64"))
    # 2026-04-29T00:03:18Z is 1777420998 s after the epoch; the endpoint is the key's part before the variant.
    assert sorted(set(billed(sink))) == [("sub_1", "llama-chat-prod", "input", 12, "1777420998.000"),
                                         ("sub_1", "llama-chat-prod", "output", 30, "1777420998.000")]
    assert len({e.transaction_id for e in sink.events}) == 2  # the same capture twice: the same two events
    assert summary.metered == 2 and not sink.dead_letters


def test_a_streamed_answer_bills_from_its_chunk_with_usage():
    chunk = {"id": "chatcmpl-8d4f1c2b9a7e4f0c", "object": "chat.completion.chunk", "created": 1777420998,
             "model": "mistralai/Mistral-7B-Instruct-v0.3"}
    stream = "".join(f"data: {json.dumps(part)}\n\n" for part in (
        {**chunk, "choices": [{"index": 0, "delta": {"content": "AI"}, "finish_reason": None}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})) + \
        "data: [DONE]\n\n"
    _, sink = meter(line(stream.encode(), encoding="BASE64", content_type="text/event-stream"))
    assert billed(sink) == [("sub_1", "mistralai/Mistral-7B-Instruct-v0.3", "input", 9, "1777420998.000"),
                            ("sub_1", "mistralai/Mistral-7B-Instruct-v0.3", "output", 4, "1777420998.000")]


def test_custom_attributes_and_the_inference_id_attribute_a_capture():
    captured = line(json.dumps(answer("qwen2.5-7b")), customAttributes=['{"customer": "sub_42"}'],
                    inferenceId="req-7")
    _, sink = meter(captured, config={"subscription_from": ["eventMetadata.customAttributes.customer"]})
    assert {e.external_subscription_id for e in sink.events} == {"sub_42"}
    _, sink = meter(captured, config={"subscription_from": ["eventMetadata.inferenceId"]})
    assert {e.external_subscription_id for e in sink.events} == {"req-7"}


def test_what_cannot_bill_says_why():
    classic = line("0.01076381653547287", encoding="CSV", content_type="text/csv; charset=utf-8")
    tgi_own_route = line(json.dumps([{"generated_text": "AI is..."}]))
    no_usage = line(json.dumps({"id": "x", "model": "m", "choices": []}))
    summary, sink = meter(classic, tgi_own_route, no_usage)
    assert summary.skipped == {"no_usage": 1}
    assert [(letter.reason, letter.detail.split(" (")[0]) for letter in sink.dead_letters] == [
        ("invalid_record", "the endpoint's answer is not a JSON object"),
        ("invalid_counts", "the endpoint's answer carries no usage")]
    unnamed, sink = meter(line(json.dumps(answer("tgi"))), key="exports/captured.jsonl")
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record"]
    assert "names no model" in sink.dead_letters[0].detail


def test_a_capture_of_the_input_alone_is_a_dead_letter_that_says_why():
    only_input = line(json.dumps(answer("qwen2.5-7b")))
    del only_input["captureData"]["endpointOutput"]
    _, sink = meter(only_input)
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_counts"]
    assert "captures only its input" in sink.dead_letters[0].detail


def test_an_endpoint_is_found_under_a_prefix_with_a_hash_or_spaces():
    tgi = answer("tgi", response_id="")
    _, sink = meter(line(json.dumps(tgi)), key="team #3/data capture/llama-chat-prod/AllTraffic/2026/04/29/00/a b.jsonl")
    assert {e.properties["model"] for e in sink.events} == {"llama-chat-prod"} and not sink.dead_letters


def test_an_answer_whose_text_holds_half_a_surrogate_pair_bills_as_any_other():
    # A stream cut inside an emoji leaves "\ud83d" escaped alone in the text: valid JSON, which orjson alone refuses.
    text = json.dumps(answer("meta-llama/Llama-3.1-8B-Instruct", created=1777420998)).replace("AI is...", "AI is \\ud83d")
    summary, sink = meter(line(text.encode(), encoding="BASE64"))
    assert billed(sink) == [("sub_1", "meta-llama/Llama-3.1-8B-Instruct", "input", 12, "1777420998.000"),
                            ("sub_1", "meta-llama/Llama-3.1-8B-Instruct", "output", 30, "1777420998.000")]
    assert not sink.dead_letters
