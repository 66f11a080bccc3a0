"""OpenAI Realtime API `response.done` events, in the shape OpenAI documents (with the model the app logs
beside them); the splits are worked out by hand."""

from conftest import meter_lines

from tokenmeter.core import record_key

USAGE = {"total_tokens": 253, "input_tokens": 132, "output_tokens": 121,
         "input_token_details": {"text_tokens": 119, "audio_tokens": 13, "cached_tokens": 64,
                                 "cached_tokens_details": {"text_tokens": 60, "audio_tokens": 4}},
         "output_token_details": {"text_tokens": 30, "audio_tokens": 91}}
DONE = {"type": "response.done", "event_id": "event_3132", "model": "gpt-realtime", "user": "sub_voice",
        "response": {"object": "realtime.response", "id": "resp_CUyE8m0VwMqmHIuQVLD2x", "status": "completed",
                     "output": [], "usage": USAGE}}


def meter(*events):
    return meter_lines(list(events), {"subscription_from": ["user"]})


def test_a_realtime_turn_bills_its_usage_split_by_modality():
    summary, sink = meter(DONE)
    assert summary.metered == 1
    tokens = {e.properties["token_type"]: e.properties["tokens"] for e in sink.events}
    # 64 cached (60 text, 4 audio); audio 13 - 4 cached = 9; text 119 - 60 cached = 59; 59 + 64 + 9 = 132.
    # Output: 91 audio, 121 - 91 = 30 text.
    assert tokens == {"input": 59, "cached_input": 64, "input_audio": 9, "output": 30, "output_audio": 91}
    # No time of its own: the log event's, which then is part of the identity.
    assert {e.timestamp for e in sink.events} == {"1732646500.000"}
    assert sink.events[0].transaction_id.startswith(
        record_key("req:resp_CUyE8m0VwMqmHIuQVLD2x|gpt-realtime|at:1732646500000"))


def test_the_model_may_be_on_the_response():
    event = {k: v for k, v in DONE.items() if k != "model"}
    _, sink = meter({**event, "response": {**DONE["response"], "model": "gpt-realtime-mini"}})
    assert {e.properties["model"] for e in sink.events} == {"gpt-realtime-mini"}


def test_a_turn_that_names_no_model_is_a_dead_letter_not_a_kept_chunk():
    summary, sink = meter({k: v for k, v in DONE.items() if k != "model"})
    assert sink.events == [] and summary.dead_letters == {"invalid_record": 1}
    assert "names no model" in sink.dead_letters[0].detail


def test_a_turn_without_usage_and_inconsistent_details():
    cancelled = {**DONE, "response": {**DONE["response"], "status": "cancelled", "usage": None}}
    details = {**USAGE["input_token_details"], "cached_tokens_details": {"text_tokens": 60, "audio_tokens": 14}}
    inconsistent = {**DONE, "response": {**DONE["response"], "usage": {**USAGE, "input_token_details": details}}}
    summary, sink = meter(cancelled, inconsistent)
    assert sink.events == [] and summary.skipped == {"no_usage": 1} and summary.dead_letters == {"invalid_counts": 1}
