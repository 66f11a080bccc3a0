"""Sending to SQS in batches (core/sqs.py): every body reaches the queue once, whether the batches go one after
another or side by side, and a batch SQS does not take fails the sender only once nothing is left sending."""

import threading
import time

import pytest

from tokenmeter.core.sqs import IN_FLIGHT, MAX_BATCH_MESSAGES, DeliveryError, QueueBatcher, shared_sender

SENDERS = {"one after another": None, "side by side": shared_sender()}


class SlowSqs:
    """Answers each SendMessageBatch after ``wait`` seconds, as SQS over a network does; records what it took and
    how many calls were under way at once."""

    def __init__(self, wait: float = 0.02, refuse_call: int | None = None, fail_once: set[str] | None = None):
        self.wait, self.refuse_call, self.fail_once = wait, refuse_call, set(fail_once or ())
        self.taken: list[str] = []
        self.calls = self.running = self.most_running = 0
        self.lock = threading.Lock()

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
        with self.lock:
            self.calls += 1
            call = self.calls
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.wait)
            if call == self.refuse_call:
                return {"Successful": [], "Failed": [{"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents",
                                                      "Message": "refused"} for e in Entries]}
            with self.lock:
                failed = [e for e in Entries if e["MessageBody"] in self.fail_once]
                self.fail_once -= {e["MessageBody"] for e in failed}
                self.taken.extend(e["MessageBody"] for e in Entries if e not in failed)
            return {"Successful": [{"Id": e["Id"]} for e in Entries if e not in failed],
                    "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in failed]}
        finally:
            with self.lock:
                self.running -= 1


def bodies(n: int) -> list[str]:
    return [f'{{"events":[{{"transaction_id":"t-{i}"}}]}}' for i in range(n)]


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
def test_every_body_reaches_the_queue_once(sender):
    sqs, sent = SlowSqs(wait=0.005), bodies(235)  # 23 full batches and one of five
    batcher = QueueBatcher(sqs, "usage", sender)
    for body in sent:
        batcher.add(body)
    batcher.flush()
    assert sorted(sqs.taken) == sorted(sent)
    assert batcher.sent == 235
    assert sqs.calls == 24


def test_side_by_side_a_few_batches_are_under_way_at_once_and_never_more_than_the_bound():
    sqs = SlowSqs(wait=0.02)
    batcher = QueueBatcher(sqs, "usage", shared_sender())
    for body in bodies(MAX_BATCH_MESSAGES * 12):
        batcher.add(body)
    batcher.flush()
    # Twelve batches of 20 ms each, added in well under a millisecond: the sender keeps its bound full.
    assert 2 <= sqs.most_running <= IN_FLIGHT
    assert sqs.running == 0 and len(sqs.taken) == MAX_BATCH_MESSAGES * 12


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
def test_entries_sqs_failed_are_sent_again_until_taken(sender):
    sent = bodies(57)
    sqs = SlowSqs(wait=0.002, fail_once={sent[3], sent[30], sent[56]})
    batcher = QueueBatcher(sqs, "usage", sender)
    for body in sent:
        batcher.add(body)
    batcher.flush()
    assert sorted(sqs.taken) == sorted(sent)
    assert sqs.calls == 6 + 3  # six batches, and each with a failed entry once more


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
def test_a_batch_sqs_refuses_fails_the_sender_once_nothing_is_left_sending(sender):
    sqs = SlowSqs(wait=0.01, refuse_call=2)
    batcher = QueueBatcher(sqs, "usage", sender)
    with pytest.raises(DeliveryError, match="refused 10 message"):
        for body in bodies(MAX_BATCH_MESSAGES * 8):
            batcher.add(body)
        batcher.flush()
    assert sqs.running == 0  # every batch sent before the failure was raised has its answer
    # The refused batch is the second; what came after it is at most what was in flight (the caller fails and is
    # retried whole, under the same ids).
    assert sqs.calls <= 2 + (IN_FLIGHT if sender else 0)
