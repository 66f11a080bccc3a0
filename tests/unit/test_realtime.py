"""OpenAI Realtime API server events, in the shapes OpenAI documents: turns (`response.done`) and input
transcriptions billed with the model the event, or its log stream's session, names; every other event billed
nothing. The splits are worked out by hand."""

import json

from conftest import Collect, meter_lines

from tokenmeter.core import parse_config, record_key
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

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


# A session's events as OpenAI documents them (GA shapes), logged by the app as they came, in one log stream.
SESSION = {"type": "session.created", "event_id": "event_C9G5RJeJ2gF77mV7f2B1j",
           "session": {"type": "realtime", "object": "realtime.session", "id": "sess_C9G5QPteg4UIbotdKLoYQ",
                       "model": "gpt-realtime-2025-08-28", "output_modalities": ["audio"],
                       "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                                           "transcription": {"model": "gpt-4o-transcribe"}},
                                 "output": {"voice": "marin"}}}}
TRANSCRIBED = {"type": "conversation.item.input_audio_transcription.completed", "event_id": "event_CCXGRvtUVrax5SJAnNOWZ",
               "item_id": "item_CCXGQ4e1ht4cOraEYcuR2", "content_index": 0, "transcript": "Hey, can you hear me?",
               "usage": {"type": "tokens", "total_tokens": 22, "input_tokens": 13,
                         "input_token_details": {"text_tokens": 0, "audio_tokens": 13}, "output_tokens": 9}}
NOISE = [{"type": "input_audio_buffer.speech_started", "event_id": "event_B1", "audio_start_ms": 1000,
          "item_id": "item_CCXGQ4e1ht4cOraEYcuR2"},
         {"type": "conversation.item.added", "event_id": "event_B2", "item": {"id": "item_1", "type": "message"}},
         {"type": "rate_limits.updated", "event_id": "event_B3", "rate_limits": []},
         {"type": "response.created", "event_id": "event_B4", "response": {"id": "resp_1", "status": "in_progress"}},
         {"type": "error", "event_id": "event_B5", "error": {"type": "invalid_request_error", "message": "x"}}]


def test_a_sessions_turns_and_transcriptions_bill_with_the_models_its_session_named():
    turn = {k: v for k, v in DONE.items() if k != "model"}  # as OpenAI sends it: no model
    summary, sink = meter_lines([SESSION, *NOISE, TRANSCRIBED, turn], {"default_subscription": "sub_voice"})
    billed = {(e.properties["model"], e.properties["token_type"]): e.properties["tokens"] for e in sink.events}
    assert billed == {
        # The turn, split as in the first test, at the session's model.
        ("gpt-realtime-2025-08-28", "input"): 59, ("gpt-realtime-2025-08-28", "cached_input"): 64,
        ("gpt-realtime-2025-08-28", "input_audio"): 9, ("gpt-realtime-2025-08-28", "output"): 30,
        ("gpt-realtime-2025-08-28", "output_audio"): 91,
        # The transcription: 13 audio tokens in, 9 text tokens out, at the session's transcription model.
        ("gpt-4o-transcribe", "input_audio"): 13, ("gpt-4o-transcribe", "output"): 9}
    assert summary.dead_letters == {}
    # The session event and the other server events bill nothing (response.created is a kept part of a turn).
    assert summary.skipped == {"realtime_event": 5, "stream_chunk": 1}


def test_a_session_names_the_model_of_its_own_log_stream_only():
    turn = {k: v for k, v in DONE.items() if k != "model"}
    config = parse_config({"default_subscription": "sub_voice"})
    sink = Collect()
    two_streams = Meter(config, TokenizerPool({}), sink)
    two_streams.add(RawRecord("cloudwatch:g:stream-a:1", "cwl:1", json.dumps(SESSION), 1_732_646_500_000))
    two_streams.add(RawRecord("cloudwatch:g:stream-b:2", "cwl:2", json.dumps(turn), 1_732_646_500_000))
    summary = two_streams.finish()
    assert sink.events == [] and summary.dead_letters == {"invalid_record": 1}
    assert "no session.created or session.updated before it" in sink.dead_letters[0].detail


def test_a_whisper_transcription_bills_by_the_second_not_here():
    beta = {"type": "session.updated", "event_id": "event_1",
            "session": {"id": "sess_1", "object": "realtime.session", "model": "gpt-4o-realtime-preview-2024-12-17",
                        "input_audio_transcription": {"model": "whisper-1"}}}
    by_duration = {**TRANSCRIBED, "usage": {"type": "duration", "seconds": 3}}
    no_session = {**TRANSCRIBED}
    summary, sink = meter_lines([beta, by_duration], {"default_subscription": "sub_voice"})
    assert sink.events == [] and summary.skipped == {"realtime_event": 1, "no_usage": 1}
    summary, sink = meter_lines([no_session], {"default_subscription": "sub_voice"})
    assert [d.reason for d in sink.dead_letters] == ["invalid_record"]
