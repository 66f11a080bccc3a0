"""Gemini CLI's recorded chats (gemini_chats.py), as its chatRecordingService writes them; counts worked out by hand."""

import json

from conftest import Collect, meter_lines

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

SESSION = {"sessionId": "5f0c2d1e-8a7b-4c3d-9e2f-1a0b9c8d7e6f", "projectHash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
           "startTime": "2026-03-02T09:14:05.118Z", "lastUpdated": "2026-03-02T09:14:05.118Z", "kind": "main"}
ASKED = {"id": "2d3c4b5a-6f7e-4d8c-9b0a-1f2e3d4c5b6a", "timestamp": "2026-03-02T09:14:11.402Z", "type": "user",
         "content": [{"text": "why does the build fail?"}]}
CALL = {"id": "8e1b4f2a-3c5d-4e6f-8a9b-0c1d2e3f4a5b", "timestamp": "2026-03-02T09:14:16.870Z", "type": "gemini",
        "content": "", "thoughts": [{"subject": "Reading the log", "description": "...", "timestamp": "2026-03-02T09:14:15.001Z"}],
        "tokens": None, "model": "gemini-2.5-pro",
        "toolCalls": [{"id": "run_shell_command-1772442856870", "name": "run_shell_command", "args": {"command": "make"},
                       "status": "executing", "timestamp": "2026-03-02T09:14:16.870Z"}]}
CALL_TOKENS = {"input": 10342, "output": 57, "cached": 8190, "thoughts": 211, "tool": 0, "total": 10610}
ANSWER = {"id": "c47d9e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f", "timestamp": "2026-03-02T09:14:21.005Z", "type": "gemini",
          "content": "The build fails because the lockfile is stale.", "thoughts": [], "model": "gemini-2.5-pro",
          "tokens": {"input": 10921, "output": 143, "cached": 10240, "thoughts": 0, "tool": 0, "total": 11064}}
# First response: 10342 prompt of which 8190 cached, 57 candidates, 211 thoughts; second: 10921 / 10240 / 143 / 0.
TOTALS = {("sub_1", "input"): (10342 - 8190) + (10921 - 10240), ("sub_1", "cached_input"): 8190 + 10240,
          ("sub_1", "output"): 57 + 143, ("sub_1", "reasoning"): 211}


def test_a_recorded_chat_bills_each_response_once_however_often_its_message_is_written():
    with_tokens = {**CALL, "tokens": CALL_TOKENS}
    done = {**with_tokens, "toolCalls": [{**CALL["toolCalls"][0], "status": "success", "result": [{"text": "ok"}]}]}
    lines = [SESSION, ASKED, CALL, {"$set": {"lastUpdated": "2026-03-02T09:14:16.871Z"}}, with_tokens, done, ANSWER,
             {"$rewindTo": ANSWER["id"]}]
    summary, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert sink.totals() == TOTALS
    assert sum(TOTALS.values()) == 10610 + 11064  # every token once: the responses' totalTokenCount
    assert not sink.dead_letters and dict(summary.skipped) == {"no_usage": 4, "not_final": 1}
    assert {e.properties["model"] for e in sink.events} == {"gemini-2.5-pro"}
    assert sorted({e.timestamp for e in sink.events}) == ["1772442856.870", "1772442861.005"]  # the messages' times


def test_a_whole_chat_written_as_one_document_bills_its_messages():
    document = {**SESSION, "messages": [ASKED, {**CALL, "tokens": CALL_TOKENS}, ANSWER]}
    sink = Collect()
    meter = Meter(parse_config({"default_subscription": "sub_1"}), TokenizerPool({}), sink)
    meter.add(RawRecord("s3://logs/gemini/chats/session-2026-03-02T09-14-5f0c2d1e.json",
                        "s3:logs/gemini/chats/session-2026-03-02T09-14-5f0c2d1e.json:e1", json.dumps(document, indent=2),
                        1_772_500_000_000))
    summary = meter.finish()
    assert sink.totals() == TOTALS and not sink.dead_letters
    assert summary.records == 3 and summary.metered == 2


def test_a_response_with_no_model_or_impossible_counts_is_a_dead_letter():
    lines = [{**ANSWER, "model": None}, {**ANSWER, "id": "f00d", "tokens": {**ANSWER["tokens"], "cached": 20000}}]
    _, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record", "invalid_counts"]
