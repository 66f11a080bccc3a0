"""Codex CLI's session files (codex_sessions.py), as its codex-rs source writes them; the counts worked out by hand."""

import pytest
from conftest import codex_rollout, codex_usage, meter_lines

from tokenmeter.metering.codex_sessions import CodexSession, CodexSessions
from tokenmeter.metering.fields import NothingToBill

# The two requests: 8213 input of which 3072 cached, 412 output of which 256 reasoning; then 8889 / 8064 / 126 / 64.
TOTALS = {("sub_1", "input"): (8213 - 3072) + (8889 - 8064), ("sub_1", "cached_input"): 3072 + 8064,
          ("sub_1", "output"): (412 - 256) + (126 - 64), ("sub_1", "reasoning"): 256 + 64}


def test_a_session_file_bills_each_response_once_at_its_token_counts_time():
    summary, sink = meter_lines(codex_rollout(), {"default_subscription": "sub_1"})
    assert sink.totals() == TOTALS
    assert sum(TOTALS.values()) == 8213 + 412 + 8889 + 126  # every token once: Codex's total_tokens summed
    assert len(sink.events) == 8 and not sink.dead_letters
    assert {e.properties["model"] for e in sink.events} == {"gpt-5-codex"}
    assert sorted({e.timestamp for e in sink.events}) == ["1759674080.010", "1759674098.925"]  # 14:21:20.010, :38.925
    # The token_count repeated at the second request; the one before any usage and the seven other lines.
    assert dict(summary.skipped) == {"repeated_count": 1, "no_usage": 8}


def test_a_token_count_with_no_turn_context_before_it_is_a_dead_letter():
    lines = [line for line in codex_rollout() if line["type"] != "turn_context"]
    _, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert not sink.events
    # Each token_count with usage, the repeated one too: none was billed, so none is known to repeat another.
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record"] * 3
    assert "turn_context" in sink.dead_letters[0].detail


def test_counts_that_do_not_add_up_are_a_dead_letter_and_the_session_goes_on():
    lines = codex_rollout()
    bad = codex_usage(100, 300, 10, 0)  # more cached than input
    lines[6] = {**lines[6], "payload": {**lines[6]["payload"], "info": {"total_token_usage": bad, "last_token_usage": bad}}}
    _, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_counts"]
    # The repeated line now bills the first request (its sum is new); the second request bills as before.
    assert sink.totals() == TOTALS


class DictMemory:
    def __init__(self):
        self.kept: dict[str, CodexSession] = {}

    def codex_session(self, group: str) -> CodexSession | None:
        return self.kept.get(group)

    def keep_codex_session(self, group: str, session: CodexSession) -> None:
        self.kept[group] = session


def test_a_log_stream_keeps_its_model_and_only_its_recent_sums():
    memory = DictMemory()
    sessions = CodexSessions(memory)
    turn, *_ = [line for line in codex_rollout() if line["type"] == "turn_context"]
    with pytest.raises(NothingToBill):  # a turn_context bills nothing: its model is noted
        sessions.add(turn, "g")
    for number in range(300):
        usage = codex_usage(number + 1, 0, 1, 0)
        sessions.add({"timestamp": "2025-10-05T14:21:20.010Z", "type": "event_msg", "payload": {
            "type": "token_count", "info": {"total_token_usage": usage, "last_token_usage": usage}}}, "g")
    kept = memory.kept["g"]
    assert kept.model == "gpt-5-codex" and len(kept.billed) == 256
    assert kept.billed[-1] == "300/0/1/0/301" and kept.billed[0] == "45/0/1/0/46"


def test_a_token_count_without_its_running_sum_is_a_dead_letter_not_a_repeat():
    lines = codex_rollout()
    for number in (6, 10):  # both responses' token_counts, their running sums left out
        info = {key: value for key, value in lines[number]["payload"]["info"].items() if key != "total_token_usage"}
        lines[number] = {**lines[number], "payload": {**lines[number]["payload"], "info": info}}
    _, sink = meter_lines(lines, {"default_subscription": "sub_1"})
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record", "invalid_record"]
    # The repeat of the first response (its sum intact) bills it; the second response is the letter's to replay.
    assert sink.totals() == {("sub_1", "input"): 8213 - 3072, ("sub_1", "cached_input"): 3072,
                             ("sub_1", "output"): 412 - 256, ("sub_1", "reasoning"): 256}
