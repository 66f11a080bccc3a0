"""The Claude Agent SDK's messages as an app logs them: the TypeScript SDK's (the CLI's stream-json) and the Python
SDK's dataclasses written out. Shapes from the SDK's types and its cost-tracking guide (a step's messages share their
id and usage); the expected counts are worked out by hand."""

import json

from conftest import CLAUDE_MODEL as MODEL
from conftest import CLAUDE_SESSION as SESSION
from conftest import Collect, meter_lines, snapshots

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

STEP_1 = {"input_tokens": 4, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 12000, "output_tokens": 7,
          "service_tier": "standard"}
STEP_2 = {"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 13500, "output_tokens": 50,
          "service_tier": "standard"}


def assistant(message_id: str, block: dict, usage: dict, uuid: str) -> dict:
    return {"type": "assistant", "message": {"id": message_id, "type": "message", "role": "assistant", "model": MODEL,
                                             "content": [block], "stop_reason": None, "usage": usage},
            "parent_tool_use_id": None, "session_id": SESSION, "uuid": uuid, "customer_id": "sub_3"}


def test_a_logged_query_bills_each_step_once_and_not_its_result():
    stream = [
        {"type": "system", "subtype": "init", "session_id": SESSION, "uuid": "u0", "model": MODEL, "tools": []},
        # Step 1 answers with a text and a tool call: two messages, one id, one usage.
        assistant("msg_01HmyMaGAgdp6Zt6DBBURNBd", {"type": "text", "text": "Let me look."}, STEP_1, "u1"),
        assistant("msg_01HmyMaGAgdp6Zt6DBBURNBd", {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
                  STEP_1, "u2"),
        {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
         "parent_tool_use_id": None, "session_id": SESSION, "uuid": "u3"},
        {"type": "stream_event", "event": {"type": "message_start", "message": {"id": "msg_2", "usage": STEP_2}},
         "parent_tool_use_id": None, "session_id": SESSION, "uuid": "u4"},
        assistant("msg_01Rk7cZfVZ9wN1Fh3fQ9Xq2L", {"type": "text", "text": "Done."}, STEP_2, "u5"),
        {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 2870, "duration_api_ms": 3720,
         "num_turns": 2, "result": "Done.", "session_id": SESSION, "total_cost_usd": 0.02,
         "usage": {"input_tokens": 14, "cache_creation_input_tokens": 1700, "cache_read_input_tokens": 25500,
                   "output_tokens": 57},
         "modelUsage": {MODEL: {"inputTokens": 14, "outputTokens": 57, "cacheReadInputTokens": 25500,
                                "cacheCreationInputTokens": 1700, "costUSD": 0.02}}, "uuid": "u6"},
    ]
    summary, sink = meter_lines(stream, {"subscription_from": ["customer_id"]})
    # 4 + 10 input, 12000 + 13500 cache reads, 1500 + 200 cache writes, 7 + 50 output; step 1 once.
    assert sink.totals() == {("sub_3", "input"): 14, ("sub_3", "cached_input"): 25500, ("sub_3", "cache_write"): 1700,
                             ("sub_3", "output"): 57}
    assert len({e.transaction_id for e in sink.events}) == 8 and not sink.dead_letters
    assert dict(summary.skipped) == {"no_usage": 2, "stream_chunk": 1, "agent_summary": 1}


def test_the_python_sdks_messages_written_out_bill_the_same_way():
    # dataclasses.asdict(AssistantMessage) / asdict(ResultMessage): no `type`, the id named message_id.
    def python_assistant(block: dict) -> dict:
        return {"content": [block], "model": MODEL, "parent_tool_use_id": None, "error": None, "usage": STEP_1,
                "message_id": "msg_01HmyMaGAgdp6Zt6DBBURNBd", "stop_reason": "tool_use", "session_id": SESSION,
                "uuid": "u1"}
    result = {"subtype": "success", "duration_ms": 2870, "duration_api_ms": 3720, "is_error": False, "num_turns": 1,
              "session_id": SESSION, "stop_reason": "end_turn", "total_cost_usd": 0.01, "usage": STEP_1,
              "result": "Done.", "structured_output": None, "model_usage": None}
    lines = [python_assistant({"text": "Let me look."}), python_assistant({"id": "toolu_1", "name": "Read"}), result]
    summary, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert sink.totals() == {("sub_1", "input"): 4, ("sub_1", "cached_input"): 12000, ("sub_1", "cache_write"): 1500,
                             ("sub_1", "output"): 7}
    assert len({e.transaction_id for e in sink.events}) == 4 and summary.skipped["agent_summary"] == 1


def test_a_steps_messages_logged_milliseconds_apart_bill_once():
    # Each message is a log event of its own, at its own time; none carries a time of its own.
    sink = Collect()
    meter = Meter(parse_config({"subscription_from": ["customer_id"]}), TokenizerPool({}), sink)
    blocks = [{"type": "text", "text": "Let me look."}, {"type": "tool_use", "id": "toolu_1", "name": "Read"},
              {"type": "tool_use", "id": "toolu_2", "name": "Grep"}]
    for number, block in enumerate(blocks):
        message = assistant("msg_01HmyMaGAgdp6Zt6DBBURNBd", block, STEP_1, f"u{number}")
        meter.add(RawRecord(f"cloudwatch:g:s:{number}", f"cwl:{number}", json.dumps(message),
                            1_764_300_000_000 + 7 * number))
    meter.finish()
    assert sink.totals() == {("sub_3", "input"): 4, ("sub_3", "cached_input"): 12000, ("sub_3", "cache_write"): 1500,
                             ("sub_3", "output"): 7}
    assert {e.timestamp for e in sink.events} == {"1764300000.000"}  # the first message's log time


def test_a_step_that_names_no_model_is_a_dead_letter_that_says_so():
    step = assistant("msg_01HmyMaGAgdp6Zt6DBBURNBd", {"type": "text", "text": "Hi"}, STEP_1, "u1")
    step["message"]["model"] = {"id": MODEL}
    summary, sink = meter_lines([step], {"default_subscription": "sub_1"})
    assert [(letter.reason, letter.detail) for letter in sink.dead_letters] == [
        ("invalid_record", f"'model' must name the model, got {{'id': '{MODEL}'}}")]


def test_claude_codes_transcript_lines_bill_their_steps_and_nothing_else():
    # A session transcript's lines: the session is `sessionId`, each line has its own time.
    common = {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/work", "sessionId": SESSION,
              "version": "2.0.14", "gitBranch": "main"}
    lines = [{**common, "type": "user", "message": {"role": "user", "content": "Fix the test"}, "uuid": "u1",
              "timestamp": "2025-10-01T10:00:00.000Z"},
             {**assistant("msg_01HmyMaGAgdp6Zt6DBBURNBd", {"type": "text", "text": "On it."}, STEP_1, "u2"),
              **common, "requestId": "req_011CUaBcDeFgHiJkLmNoPqRs", "timestamp": "2025-10-01T10:00:02.000Z"},
             {**common, "type": "system", "subtype": "compact_boundary", "content": "Conversation compacted",
              "uuid": "u3", "timestamp": "2025-10-01T10:05:00.000Z"}]
    summary, sink = meter_lines(lines, {"subscription_from": ["customer_id"]})
    assert sink.totals() == {("sub_3", "input"): 4, ("sub_3", "cached_input"): 12000, ("sub_3", "cache_write"): 1500,
                             ("sub_3", "output"): 7}
    assert dict(summary.skipped) == {"no_usage": 2} and not sink.dead_letters


def meter_object(lines: list[dict], etag: str, modified_ms: int, sink: Collect) -> None:
    """The transcript as one S3 object: each line a record identified by the object's version and its line."""
    meter = Meter(parse_config({"default_subscription": "sub_1"}), TokenizerPool({}), sink)
    for number, line in enumerate(lines, 1):
        meter.add(RawRecord(f"s3://logs/claude/{SESSION}.jsonl#line={number}", f"s3:logs/claude/{SESSION}.jsonl:{etag}#{number}",
                            json.dumps(line), modified_ms))
    meter.finish()


def test_a_transcripts_snapshots_of_a_streamed_answer_bill_its_final_output_once():
    # Claude Code writes an answer's lines as it streams (the output so far on each: 9, 9, 159): the answer's output
    # is the last's (9, then 159 - 9 as it grew); its input and cache counts each line's.
    sink = Collect()
    meter_object(snapshots("msg_01QbxpX1a9Yp4HgyDvXyNq7W", "2025-10-01T10:00:02.000Z", [9, 9, 159]), "e1",
                 1_759_400_000_000, sink)
    assert sink.totals() == {("sub_1", "input"): 10, ("sub_1", "cache_write"): 11862, ("sub_1", "cached_input"): 15555,
                             ("sub_1", "output"): 159}
    # At the times its lines were written, not when the transcript reached S3 (a day later here): the input and
    # cache counts at its first line's (10:00:02.000), the output as it grew, at the first and last lines'.
    assert sorted((e.properties["token_type"], e.properties["tokens"], e.timestamp) for e in sink.events) == [
        ("cache_write", 11862, "1759312802.000"), ("cached_input", 15555, "1759312802.000"),
        ("input", 10, "1759312802.000"), ("output", 9, "1759312802.000"), ("output", 150, "1759312802.002")]


def test_a_transcript_synced_while_an_answer_streams_and_again_once_it_ended_bills_its_whole_output():
    # The first sync caught the answer's first two lines (its running output count: 1), the second the whole answer.
    lines = snapshots("msg_01QbxpX1a9Yp4HgyDvXyNq7W", "2025-10-01T10:00:02.000Z", [1, 1, 159])
    sink = Collect()
    meter_object(lines[:2], "e1", 1_759_313_000_000, sink)
    meter_object(lines, "e2", 1_759_314_000_000, sink)
    # Both syncs bill the same events for the lines both hold (same ids, times and counts): the input and cache, and
    # the output up to the running count the first saw (1); the second adds what its last line counted (159 - 1).
    # (Before, it billed the whole 159 beside the 1.)
    assert sink.totals() == {("sub_1", "input"): 10, ("sub_1", "cache_write"): 11862, ("sub_1", "cached_input"): 15555,
                             ("sub_1", "output"): 159}


def test_a_transcript_uploaded_again_as_it_grows_bills_each_answer_once():
    first = snapshots("msg_01QbxpX1a9Yp4HgyDvXyNq7W", "2025-10-01T10:00:02.000Z", [9, 159])
    second = snapshots("msg_01Vd3JkLmPq8RsTuVwXyZa4B", "2025-10-01T10:01:30.000Z", [3, 41])
    sink = Collect()
    meter_object(first, "e1", 1_759_313_000_000, sink)  # the session so far, synced
    meter_object(first + second, "e2", 1_759_314_000_000, sink)  # the same file, grown, synced again
    # 10 + 10 input, 11862 + 11862 cache writes, 15555 + 15555 cache reads, 159 + 41 output: each answer once.
    assert sink.totals() == {("sub_1", "input"): 20, ("sub_1", "cache_write"): 23724, ("sub_1", "cached_input"): 31110,
                             ("sub_1", "output"): 200}


def test_answers_past_what_the_meter_holds_are_billed_all_the_same(monkeypatch):
    import tokenmeter.metering.held as held

    monkeypatch.setattr(held, "HELD_KEPT", 2)
    lines = [line for n in range(5) for line in snapshots(f"msg_01QbxpX1a9Yp4HgyDvXyNq7{n}", f"2025-10-01T10:0{n}:00.000Z",
                                                          [5, 20 + n])]
    sink = Collect()
    meter_object(lines, "e1", 1_759_313_000_000, sink)
    # Five answers: 5 x 10 input, 5 x 11862 cache writes, 5 x 15555 cache reads, 20 + 21 + 22 + 23 + 24 output.
    assert sink.totals() == {("sub_1", "input"): 50, ("sub_1", "cache_write"): 59310, ("sub_1", "cached_input"): 77775,
                             ("sub_1", "output"): 110}


def test_a_transcripts_bookkeeping_lines_and_an_api_error_bill_nothing_and_are_no_dead_letters():
    lines = [
        {"type": "summary", "summary": "Fix the flaky billing test", "leafUuid": "5d3c1b2a-0f9e-4d8c-b7a6-123456789abc"},
        {"type": "file-history-snapshot", "messageId": "7a6b5c4d", "isSnapshotUpdate": False,
         "snapshot": {"messageId": "7a6b5c4d", "trackedFileBackups": {}, "timestamp": "2025-10-01T10:00:00.000Z"}},
        {"type": "queue-operation", "operation": "enqueue", "timestamp": "2025-10-01T10:00:01.000Z",
         "content": "and the docs", "sessionId": SESSION},
        # An API error Claude Code records as an answer of its own: no model was called, nothing counted.
        {"parentUuid": "u1", "isSidechain": False, "sessionId": SESSION, "type": "assistant", "uuid": "u2",
         "timestamp": "2025-10-01T10:00:05.000Z", "isApiErrorMessage": True,
         "message": {"id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "model": "<synthetic>", "role": "assistant",
                     "stop_reason": "stop_sequence", "type": "message", "content": [{"type": "text", "text": "API Error"}],
                     "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                               "cache_read_input_tokens": 0}}},
    ]
    summary, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert not sink.events and not sink.dead_letters and dict(summary.skipped) == {"no_usage": 4}
