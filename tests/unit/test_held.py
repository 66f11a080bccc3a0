"""What count_tokens keeps of answers a delivery left unended (held.py): bounded, so a log stream's memory cannot
grow for ever."""

from tokenmeter.metering import held
from tokenmeter.metering.held import HeldAnswers

DAY_MS = 24 * 3600 * 1000
NOW = 1_759_312_802_000


class DictMemory:
    def __init__(self, kept: dict[str, dict[str, int]]):
        self.kept = kept

    def first_copies(self, group: str) -> dict[str, int]:
        return dict(self.kept.get(group, {}))

    def keep_first_copies(self, group: str, firsts: dict[str, int]) -> None:
        self.kept[group] = firsts


def hold_unended(answers: HeldAnswers, identity: str, at: int) -> None:
    answers.hold(identity, "sub_1", "claude-sonnet-4-5", at, {"input": 3, "output": 1}, False, "cloudwatch:g:s")


def test_first_copies_older_than_a_day_are_forgotten():
    memory = DictMemory({"cloudwatch:g:s": {"req:old": NOW - 2 * DAY_MS, "req:recent": NOW - 3600_000}})
    answers = HeldAnswers(memory)
    hold_unended(answers, "req:new", NOW)
    answers.finish()
    assert memory.kept == {"cloudwatch:g:s": {"req:recent": NOW - 3600_000, "req:new": NOW}}


def test_a_log_stream_keeps_only_its_newest_first_copies(monkeypatch):
    monkeypatch.setattr(held, "_REMEMBERED_PER_GROUP", 2)
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    for number, at in enumerate([NOW + 5, NOW + 1, NOW + 9]):
        hold_unended(answers, f"req:{number}", at)
    answers.finish()
    assert memory.kept == {"cloudwatch:g:s": {"req:0": NOW + 5, "req:2": NOW + 9}}


def test_an_answer_without_a_log_stream_is_not_remembered():
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    answers.hold("req:1", "sub_1", "claude-sonnet-4-5", NOW, {"input": 3, "output": 1}, False)
    bills = answers.finish()
    assert memory.kept == {}
    assert [(b.identity, b.timestamp_ms, b.counts) for b in bills] == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "output": 1})]
