"""What count_tokens keeps of answers a delivery left unended (held.py): bounded, so a log stream's memory cannot
grow for ever; and what a later delivery bills of an answer an earlier one began, worked out by hand."""

from tokenmeter.metering import held
from tokenmeter.metering.held import HeldAnswers, Remembered

DAY_MS = 24 * 3600 * 1000
NOW = 1_759_312_802_000
STREAM = "cloudwatch:g:s"


class DictMemory:
    def __init__(self, kept: dict[str, dict[str, Remembered]]):
        self.kept = kept

    def answers(self, group: str) -> dict[str, Remembered]:
        return dict(self.kept.get(group, {}))

    def keep_answers(self, group: str, answers: dict[str, Remembered]) -> None:
        self.kept[group] = answers


def hold_unended(answers: HeldAnswers, identity: str, at: int) -> None:
    answers.hold(identity, "sub_1", "claude-sonnet-4-5", at, {"input": 3, "output": 1}, False, STREAM)


def copies(answers: HeldAnswers, outputs: list[int], start: int, ends: bool = False) -> None:
    """Copies of one answer a millisecond apart, the running output on each; the last ends it where ``ends``."""
    for number, output in enumerate(outputs):
        answers.hold("req:1", "sub_1", "claude-sonnet-4-5", start + number, {"input": 3, "output": output},
                     ends and number == len(outputs) - 1, STREAM)


def billed(bills: list[held.HeldBill]) -> list[tuple[str, int, dict[str, int]]]:
    return [(b.identity, b.timestamp_ms, b.counts) for b in bills]


def events(bills: list[held.HeldBill]) -> set[tuple[str, int, str, int]]:
    """The events the bills make, each named by its identity and token type (its transaction id's parts)."""
    return {(b.identity, b.timestamp_ms, token_type, tokens) for b in bills for token_type, tokens in b.counts.items()}


def test_first_copies_older_than_a_day_are_forgotten():
    memory = DictMemory({STREAM: {"req:old": Remembered(NOW - 2 * DAY_MS, 1),
                                  "req:recent": Remembered(NOW - 3600_000, 1)}})
    answers = HeldAnswers(memory)
    hold_unended(answers, "req:new", NOW)
    answers.finish()
    assert memory.kept == {STREAM: {"req:recent": Remembered(NOW - 3600_000, 1), "req:new": Remembered(NOW, 1)}}


def test_a_log_stream_keeps_only_its_newest_first_copies(monkeypatch):
    monkeypatch.setattr(held, "_REMEMBERED_PER_GROUP", 2)
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    for number, at in enumerate([NOW + 5, NOW + 1, NOW + 9]):
        hold_unended(answers, f"req:{number}", at)
    answers.finish()
    assert memory.kept == {STREAM: {"req:0": Remembered(NOW + 5, 1), "req:2": Remembered(NOW + 9, 1)}}


def test_an_answer_without_a_log_stream_is_not_remembered():
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    answers.hold("req:1", "sub_1", "claude-sonnet-4-5", NOW, {"input": 3, "output": 1}, False)
    bills = answers.finish()
    assert memory.kept == {}
    assert billed(bills) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "output": 1})]


def test_copies_without_a_log_stream_bill_as_one_answer_whatever_the_first_copy_held():
    # An app that logs one Anthropic response three times in a delivery (no log stream kept): the first copy with no
    # output yet, the cache read grown on the second; the third ends it.
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    for number, (cached, output) in enumerate([(40, 0), (50, 9), (50, 159)]):
        counts = {"input": 3, "cached_input": cached} | ({"output": output} if output else {})
        answers.hold("req:1", "sub_1", "claude-sonnet-4-5", NOW + number, counts, number == 2)
    # Input and the largest cache read at the first copy's time; the output as it rose, each rise at its copy's time.
    assert billed(answers.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "cached_input": 50}),
        (f"req:1|at:{NOW + 1}", NOW + 1, {"output": 9}),
        (f"req:1|from:9|at:{NOW + 2}", NOW + 2, {"output": 150})]
    assert memory.kept == {}


def test_each_copy_that_raises_the_output_bills_what_it_adds_at_its_time():
    answers = HeldAnswers(DictMemory({}))
    copies(answers, [9, 9, 159], NOW, ends=True)
    # 9 at the first copy, 159 - 9 at the third; the input once, at the first copy's time.
    assert billed(answers.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "output": 9}),
        (f"req:1|from:9|at:{NOW + 2}", NOW + 2, {"output": 150})]


def test_a_running_count_that_grows_in_a_later_delivery_bills_what_it_added():
    # Claude Code's transcripts never end an answer: 8, 8 in one delivery, 8, 310 in the next.
    memory = DictMemory({})
    first = HeldAnswers(memory)
    copies(first, [8, 8], NOW)
    assert billed(first.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "output": 8})]
    assert memory.kept == {STREAM: {"req:1": Remembered(NOW, 8)}}
    second = HeldAnswers(memory)
    copies(second, [8, 310], NOW + 2)
    # The input again under the first delivery's id and time (a copy); 310 - 8 of output at the copy that counted it.
    assert billed(second.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3}),
        (f"req:1|from:8|at:{NOW + 3}", NOW + 3, {"output": 302})]
    assert memory.kept == {STREAM: {"req:1": Remembered(NOW, 310)}}
    again = HeldAnswers(memory)  # the second delivery again, after it was delivered: nothing new to bill
    copies(again, [8, 310], NOW + 2)
    assert billed(again.finish()) == [(f"req:1|at:{NOW}", NOW, {"input": 3})]


def test_however_an_answers_copies_are_split_between_deliveries_they_bill_the_same_events():
    outputs = [3, 3, 8, 8, 120, 100, 310]  # a running count (one copy lower than the one before it)
    whole = HeldAnswers(DictMemory({}))
    copies(whole, outputs, NOW)
    expected = events(whole.finish())
    assert sum(tokens for _, _, token_type, tokens in expected if token_type == "output") == 310
    for cut in range(1, len(outputs)):  # two deliveries of one log stream, with a stream memory
        memory, got = DictMemory({}), set()
        for part, start in ((outputs[:cut], NOW), (outputs[cut:], NOW + cut)):
            answers = HeldAnswers(memory)
            copies(answers, part, start)
            got |= events(answers.finish())
        assert got == expected, cut
        # A sync of the whole transcript again (its first part, then all of it) bills the same events too.
        memory, got = DictMemory({}), set()
        for part in (outputs[:cut], outputs):
            answers = HeldAnswers(memory)
            copies(answers, part, NOW)
            got |= events(answers.finish())
        assert got == expected, cut


def test_the_copy_ending_an_answer_bills_its_output_less_what_an_earlier_delivery_billed():
    memory = DictMemory({STREAM: {"req:1": Remembered(NOW, 1)}})
    answers = HeldAnswers(memory)
    copies(answers, [1, 159], NOW + 1, ends=True)
    assert billed(answers.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3}),
        (f"req:1|from:1|at:{NOW + 2}", NOW + 2, {"output": 158})]
    assert memory.kept == {STREAM: {"req:1": Remembered(NOW, 159)}}


def test_an_answer_ended_in_its_first_delivery_is_not_remembered():
    memory = DictMemory({})
    answers = HeldAnswers(memory)
    copies(answers, [159], NOW, ends=True)
    assert billed(answers.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3, "output": 159})]
    assert memory.kept == {}


def test_a_first_copy_kept_without_its_output_bills_the_output_only_from_the_ending_copy():
    # Kept by the release before: what it billed of the running count is not known, so only an ending copy bills,
    # its whole output under the id that release gave it.
    memory = DictMemory({STREAM: {"req:1": Remembered(NOW, None)}})
    unended = HeldAnswers(memory)
    copies(unended, [1, 40], NOW + 1)
    assert billed(unended.finish()) == [(f"req:1|at:{NOW}", NOW, {"input": 3})]
    ended = HeldAnswers(memory)
    copies(ended, [40, 159], NOW + 3, ends=True)
    assert billed(ended.finish()) == [
        (f"req:1|at:{NOW}", NOW, {"input": 3}),
        (f"req:1|at:{NOW + 4}", NOW + 4, {"output": 159})]
