"""Streams logged chunk by chunk: each billed once, whole or split across deliveries. Chunks follow the
providers' documented stream examples; counts are worked out by hand (or with tiktoken for text)."""

import json

from conftest import Collect

from tokenmeter.core import parse_config, record_key
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

CHAT_ID = "chatcmpl-123AbCdEfGhIjKlMnOpQrStU"


def chunk(delta, finish=None, usage="absent", index=0):
    body = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini",
            "system_fingerprint": "fp_44709d6fcb", "choices": [{"index": index, "delta": delta, "logprobs": None,
                                                                "finish_reason": finish}]}
    if usage != "absent":
        body["usage"] = usage
    return body


WITH_USAGE = [chunk({"role": "assistant", "content": ""}, usage=None), chunk({"content": "Hello"}, usage=None),
              chunk({"content": " there"}, usage=None), chunk({}, "stop", usage=None),
              {"id": CHAT_ID, "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini",
               "system_fingerprint": "fp_44709d6fcb", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                         "prompt_tokens_details": {"cached_tokens": 0}}}]
WITHOUT_USAGE = [chunk({"role": "assistant", "content": ""}), chunk({"content": "The sky"}),
                 chunk({"content": " is blue because of Rayleigh scattering."}), chunk({}, "stop")]

# Groq's stream, as its API sends it: the first chunk's x_groq names the request, the last one's carries the
# usage (groq-python's ChatCompletionChunk.x_groq: "Usage information for the stream. Only sent in the final chunk").
GROQ_ID = "chatcmpl-4a6e3b2c-9a1d-4f0e-8c3b-2d7e5f1a9b08"
GROQ_REQUEST = "req_01jbd6g2qdfw2adyrt2az8hz4w"


def groq_chunk(delta, finish=None, x_groq=None):
    body = {"id": GROQ_ID, "object": "chat.completion.chunk", "created": 1730241104, "model": "llama-3.3-70b-versatile",
            "system_fingerprint": "fp_c0cfa69934", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                                "finish_reason": finish}]}
    if x_groq is not None:
        body["x_groq"] = x_groq
    return body


GROQ = [groq_chunk({"role": "assistant", "content": ""}, x_groq={"id": GROQ_REQUEST}),
        groq_chunk({"content": "Fast"}), groq_chunk({"content": " inference"}),
        groq_chunk({}, "stop", x_groq={"id": GROQ_REQUEST, "usage": {
            "queue_time": 0.021, "prompt_tokens": 43, "prompt_time": 0.0021, "completion_tokens": 3,
            "completion_time": 0.0109, "total_tokens": 46, "total_time": 0.013}})]

MESSAGE_ID = "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
ANTHROPIC = [
    {"type": "message_start", "message": {"id": MESSAGE_ID, "type": "message", "role": "assistant", "content": [],
                                          "model": "claude-sonnet-4-5-20250929", "stop_reason": None,
                                          "stop_sequence": None, "usage": {"input_tokens": 25, "output_tokens": 1,
                                                                           "cache_read_input_tokens": 100}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 15}},
    {"type": "message_stop"},
]




def deliver(batches, tokenizers=None, first_line=0):
    """Each batch is one invocation's records (CloudWatch log events of one stream, numbered on)."""
    config = parse_config({"default_subscription": "sub_stream", "tokenizers": tokenizers or {}})
    sink, summaries, line = Collect(), [], first_line
    for batch in batches:
        meter = Meter(config, TokenizerPool(config.tokenizers), sink)
        for record in batch:
            line += 1
            meter.add(RawRecord(f"cloudwatch:/app/llm:stream-1:{line}", f"cwl:{line}", json.dumps(record),
                                1_732_646_400_000 + line))
        summaries.append(meter.finish())
    return summaries, sink


def billed(sink):
    totals = {}
    for event in sink.events:
        key = event.properties["token_type"]
        totals[key] = totals.get(key, 0) + event.properties["tokens"]
    return totals


def test_openai_stream_with_usage_bills_only_the_usage_chunk():
    [summary], sink = deliver([WITH_USAGE])
    assert billed(sink) == {"input": 9, "output": 2}
    assert {e.transaction_id for e in sink.events} == {record_key(f"req:{CHAT_ID}|gpt-4o-mini") + "-input",
                                                       record_key(f"req:{CHAT_ID}|gpt-4o-mini") + "-output"}
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 4} and summary.records == 5


def test_openai_stream_with_usage_split_across_deliveries_bills_once():
    _, whole = deliver([WITH_USAGE])
    summaries, split = deliver([WITH_USAGE[:2], WITH_USAGE[2:]])
    assert [e.as_dict() for e in split.events] == [e.as_dict() for e in whole.events]
    assert sum(s.metered for s in summaries) == 1


def test_openai_stream_without_usage_is_counted_from_its_text(llama3_dir, tiktoken_llama3):
    text = "The sky is blue because of Rayleigh scattering."
    [summary], sink = deliver([WITHOUT_USAGE], tokenizers={"gpt-4o*": llama3_dir})
    # No prompt in the chunks: only the streamed text is billed.
    assert billed(sink) == {"output": len(tiktoken_llama3.encode(text))}
    assert sink.events[0].transaction_id == record_key(f"req:{CHAT_ID}|gpt-4o-mini") + "-output"
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 3}


def test_openai_stream_without_usage_split_bills_each_part_once(llama3_dir, tiktoken_llama3):
    summaries, sink = deliver([WITHOUT_USAGE[:2], WITHOUT_USAGE[2:]], tokenizers={"gpt-4o*": llama3_dir})
    parts = ["The sky", " is blue because of Rayleigh scattering."]
    assert sorted(e.properties["tokens"] for e in sink.events) == sorted(len(tiktoken_llama3.encode(p)) for p in parts)
    assert len({e.transaction_id for e in sink.events}) == 2
    # Delivered again, the same parts give the same ids.
    _, again = deliver([WITHOUT_USAGE[:2], WITHOUT_USAGE[2:]], tokenizers={"gpt-4o*": llama3_dir})
    assert {e.transaction_id for e in again.events} == {e.transaction_id for e in sink.events}
    assert [s.records for s in summaries] == [2, 2]
    assert sum(s.metered for s in summaries) == 2


def test_anthropic_start_and_delta_are_one_inference():
    [summary], sink = deliver([ANTHROPIC])
    assert billed(sink) == {"input": 25, "cached_input": 100, "output": 15}
    assert summary.records == 8 and summary.metered == 1 and summary.skipped == {"stream_chunk": 7}
    key = record_key(f"req:{MESSAGE_ID}|claude-sonnet-4-5-20250929|at:1732646400001")
    assert {e.transaction_id for e in sink.events} == {f"{key}-input", f"{key}-cached_input", f"{key}-output"}


def test_anthropic_cumulative_delta_with_final_input_counts_wins():
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"input_tokens": 40, "cache_read_input_tokens": 100, "output_tokens": 15}}
    _, sink = deliver([[ANTHROPIC[0], delta]])
    assert billed(sink) == {"input": 40, "cached_input": 100, "output": 15}


def test_anthropic_stream_whose_end_is_in_the_next_delivery_bills_its_input_then_dead_letters_the_rest():
    summaries, sink = deliver([ANTHROPIC[:4], ANTHROPIC[4:]])
    assert billed(sink) == {"input": 25, "cached_input": 100}
    assert summaries[0].metered == 1
    assert summaries[1].dead_letters == {"stream_unpaired": 1}
    assert sum(s.records for s in summaries) == 8


def test_two_messages_in_one_log_stream_pair_in_order():
    second = json.loads(json.dumps(ANTHROPIC))
    second[0]["message"]["id"] = "msg_2xYzL29xx5MUA1yADyHTEsnR8uuvGzszzz"
    second[0]["message"]["usage"] = {"input_tokens": 7, "output_tokens": 1}
    second[6]["usage"] = {"output_tokens": 3}
    _, sink = deliver([ANTHROPIC + second])
    assert billed(sink) == {"input": 32, "cached_input": 100, "output": 18}


def test_responses_api_stream_bills_the_completed_event():
    response = {"id": "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654", "object": "response",
                "created_at": 1741290958, "status": "in_progress", "model": "gpt-4.1-2025-04-14", "usage": None}
    events = [{"type": "response.created", "sequence_number": 0, "response": response},
              {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1", "output_index": 0,
               "content_index": 0, "delta": "Hi"},
              {"type": "response.completed", "sequence_number": 9, "response": {
                  **response, "status": "completed",
                  "usage": {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 11,
                            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 48}}}]
    [summary], sink = deliver([events])
    assert billed(sink) == {"input": 37, "output": 11}
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 2}


def test_groq_stream_bills_the_usage_in_its_last_chunk():
    [summary], sink = deliver([GROQ])  # no tokenizer configured: nothing here needs one
    assert billed(sink) == {"input": 43, "output": 3}
    key = record_key(f"req:{GROQ_ID}|llama-3.3-70b-versatile")
    assert {e.transaction_id for e in sink.events} == {f"{key}-input", f"{key}-output"}
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 3} and summary.dead_letters == {}


def test_groq_stream_split_across_deliveries_bills_its_usage_once_and_no_text(llama3_dir):
    _, whole = deliver([GROQ])
    for cut in (1, 2, 3):
        summaries, split = deliver([GROQ[:cut], GROQ[cut:]], tokenizers={"llama*": llama3_dir})
        assert [e.as_dict() for e in split.events] == [e.as_dict() for e in whole.events], cut
        assert sum(s.metered for s in summaries) == 1


def test_groq_chunks_dumped_by_its_sdk_bill_the_last_chunks_usage():
    # groq-python's model_dump() writes every field: "usage": None and "x_groq": None in the middle chunks.
    dumped = [{**c, "usage": None, "x_groq": c.get("x_groq")} for c in GROQ]
    [summary], sink = deliver([dumped])
    assert billed(sink) == {"input": 43, "output": 3}
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 3}


def test_an_azure_openai_stream_bills_once_and_its_content_filter_chunks_are_parts():
    # Azure OpenAI sends its prompt's filter results as a first chunk with no id, model or choices, and (with
    # annotations on) the completion's as chunks with no delta: reported as such against SDKs that choked on them.
    prompt_filter = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "system_fingerprint": None,
                     "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
                         "hate": {"filtered": False, "severity": "safe"}}}], "usage": None}
    annotations = {"id": "", "object": "", "created": 0, "model": "", "usage": None,
                   "choices": [{"index": 0, "finish_reason": None, "content_filter_results": {},
                                "content_filter_offsets": {"check_offset": 44, "start_offset": 44, "end_offset": 198}}]}
    [summary], sink = deliver([[prompt_filter, *WITH_USAGE[:4], annotations, WITH_USAGE[4]]])
    assert billed(sink) == {"input": 9, "output": 2} and sink.dead_letters == []
    assert summary.metered == 1 and summary.skipped == {"stream_chunk": 6}


MISTRAL_A, MISTRAL_B = "cmpl-e5cc70bb28c444948073e77776eb30ef", "cmpl-0a1b2c3d4e5f40718293a4b5c6d7e8f9"


def mistral_chunk(stream_id, delta, finish=None, usage=None):
    # Mistral's stream: no usage key until the last chunk, which carries it beside the finish_reason.
    body = {"id": stream_id, "object": "chat.completion.chunk", "created": 1702256327, "model": "mistral-small-latest",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def test_a_stream_whose_usage_comes_in_its_last_chunk_split_between_deliveries_bills_once(llama3_dir):
    # The first delivery holds a whole Mistral stream and the beginning of the next: that beginning is not
    # counted from its text (with a tokenizer configured it was, and the usage billed its output again).
    whole = [mistral_chunk(MISTRAL_A, {"role": "assistant", "content": ""}), mistral_chunk(MISTRAL_A, {"content": "Hi"}),
             mistral_chunk(MISTRAL_A, {"content": "!"}, "stop",
                           {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12})]
    begun = [mistral_chunk(MISTRAL_B, {"role": "assistant", "content": ""}),
             mistral_chunk(MISTRAL_B, {"content": "Paris is the capital"})]
    rest = [mistral_chunk(MISTRAL_B, {"content": " of France."}, "stop",
                          {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22})]
    summaries, sink = deliver([whole + begun, rest], tokenizers={"mistral*": llama3_dir})
    assert sorted((e.transaction_id[-6:], e.properties["tokens"]) for e in sink.events) == [
        ("-input", 10), ("-input", 15), ("output", 2), ("output", 7)]
    assert sink.dead_letters == [] and [s.metered for s in summaries] == [1, 1]
    assert summaries[0].skipped == {"stream_chunk": 4}


def test_a_stream_with_running_usage_in_every_chunk_bills_its_final_count_once():
    # vLLM with stream_options {"include_usage": true, "continuous_usage_stats": true}: every chunk carries the
    # usage so far, the finishing chunk and a last usage-only chunk the whole stream's.
    def running(delta, completion, finish=None, choices=True):
        return {"id": "chatcmpl-9b1c2d3e4f5a4b6c8d7e", "object": "chat.completion.chunk", "created": 1731000000,
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
                "usage": {"prompt_tokens": 12, "completion_tokens": completion, "total_tokens": 12 + completion}}
    chunks = [running({"role": "assistant", "content": ""}, 0), running({"content": "Hello"}, 1),
              running({"content": " world"}, 2), running({"content": ""}, 2, "stop"), running({}, 2, choices=False)]
    [summary], sink = deliver([chunks])
    # The chunks streaming text are parts; the role chunk (nothing generated yet), the finishing chunk and the
    # usage chunk each bill what is counted so far, under the stream's ids: one count per id, the final one.
    by_id = {}
    for event in sink.events:
        by_id.setdefault(event.transaction_id, set()).add((event.properties["token_type"], event.properties["tokens"]))
    assert sorted(by_id.values()) == [{("input", 12)}, {("output", 2)}]
    assert summary.skipped == {"stream_chunk": 2} and summary.metered == 3
