"""The running totals against a real nats-server: they equal a straight sum over the streams after any
interleaving of publishing, dead letters, unbillable copies and passes killed between any two steps (an
exception, a process exit, nats-server SIGKILLed, the deadline)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from conftest import ROOT, publish_to_ledger, stream_messages

from tokenmeter.nats import ManagedConnection, NatsSettings

BUCKET = "tokenmeter_totals"
SUBSCRIPTIONS = ["sub_a", "acme/eu west", "ünïcødé 客户", "50%off"]
DAY0 = 1_794_700_800  # 2026-11-15T00:00:00Z


class Killed(Exception):
    pass


def event(i: int, rng: random.Random) -> dict:
    # Three days, to the millisecond, so slices and day edges are crossed.
    stamp = DAY0 + rng.randrange(3 * 86_400_000) / 1000
    return {"transaction_id": f"t{i}", "external_subscription_id": rng.choice(SUBSCRIPTIONS), "code": "llm_tokens",
            "timestamp": f"{stamp:.3f}", "properties": {"tokens": rng.randrange(1, 5000), "model": rng.choice(["a", "b"]),
                                                         "token_type": rng.choice(["input", "output"])}}


def run(url: str, work):
    connection = ManagedConnection(NatsSettings.from_env({**os.environ, "NATS_URL": url}))

    async def go():
        try:
            return await work(await connection.jetstream())
        finally:
            await connection.close()

    try:
        return connection.run(go())
    finally:
        connection.loop.close()
        asyncio.set_event_loop(None)


def tally(url: str, step=None, batch: int = 7, deadline: float = 60.0, out_of_time_after: int | None = None) -> dict:
    """One pass; ``out_of_time_after``: the deadline passes after that many steps."""
    from tokenmeter.shipping.tally import Tally, TallySettings
    from tokenmeter.shipping.totals import PropertyNames
    from tokenmeter.shipping.totals_store import TotalsStore

    async def work(js):
        store = await TotalsStore.open(js, BUCKET, 400)
        settings = TallySettings("USAGE", "usage.>", "lago-sync", "USAGE_DLQ", "USAGE_UNBILLABLE", PropertyNames(),
                                 0, 4000, batch=batch)
        one = Tally(js, store, settings, time.monotonic() + deadline, step)
        if out_of_time_after is not None:
            steps = []

            def clock(name: str) -> None:
                steps.append(name)
                if len(steps) == out_of_time_after:
                    one.deadline = 0

            one.step = clock
        return (await one.run()).as_dict()

    return run(url, work)


def side_copy(url: str, stream: str, seq: int, reason: str, letter_id: str) -> None:
    """What lago_sync writes to USAGE_DLQ or USAGE_UNBILLABLE for ledger message ``seq``."""
    from nats.js.api import StreamConfig

    async def work(js):
        try:
            await js.stream_info(stream)
        except Exception:
            await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
        msg = await js.get_msg("USAGE", seq)
        rest = msg.subject.partition(".")[2]
        await js.publish(f"{stream.lower()}.{rest}", msg.data, stream=stream,
                         headers={"Nats-Msg-Id": letter_id, "Tokenmeter-Reason": reason,
                                  "Tokenmeter-Source": f"nats:USAGE:{seq}",
                                  "Tokenmeter-Transaction-Id": json.loads(msg.data)["transaction_id"]})

    run(url, work)


def straight_sum(url: str) -> tuple[dict, dict, dict]:
    """Read every stream whole and add up, independently of the code under test: ledger messages, less each
    ledger message named by a dead letter (once, however many letters name it); unbillable copies by reason."""
    dead_sources, dead_reasons, unbillable = set(), defaultdict(int), defaultdict(lambda: [0, 0])
    for letter in stream_messages(url, "USAGE_DLQ"):
        dead_sources.add(int(letter.headers["Tokenmeter-Source"].rsplit(":", 1)[1]))
        dead_reasons[letter.headers["Tokenmeter-Reason"]] += 1
    for copy in stream_messages(url, "USAGE_UNBILLABLE"):
        body = json.loads(copy.data)
        row = unbillable[(body["external_subscription_id"], copy.headers["Tokenmeter-Reason"])]
        row[0] += body["properties"]["tokens"]
        row[1] += 1
    sums = defaultdict(lambda: [0, 0])
    for msg in stream_messages(url, "USAGE"):
        if msg.seq in dead_sources:
            continue
        body = json.loads(msg.data)
        day = datetime.fromtimestamp(int(Decimal(body["timestamp"])), UTC).strftime("%Y%m%d")
        row = sums[(body["external_subscription_id"], day, body["code"])]
        row[0] += body["properties"]["tokens"]
        row[1] += 1
    return ({k: v for k, v in sums.items() if v[1]}, dict(dead_reasons),
            {k: tuple(v) for k, v in unbillable.items()})


def kept_totals(url: str) -> tuple[dict, dict, dict, dict]:
    """What the totals hold: per (subscription, day, code) from the subscription documents and again from the
    day documents' slices; the checkpoint's dead letters by reason; unbillable by subscription and reason."""
    from tokenmeter.shipping.totals import Checkpoint, DayTotals, SubscriptionTotals, split_key
    from tokenmeter.shipping.totals_store import subscription_of

    by_sub, by_day, unbillable, checkpoint = {}, defaultdict(lambda: [0, 0]), {}, None
    # Every key's one message (history 1), read from the bucket's stream as it is.
    for msg in stream_messages(url, f"KV_{BUCKET}"):
        key, value = msg.subject[len(f"$KV.{BUCKET}."):], msg.data
        if key.startswith("sub."):
            doc = SubscriptionTotals.from_json(subscription_of(key[4:]), value)
            for day, codes in doc.days.items():
                for code, (units, events) in codes.items():
                    if events:
                        by_sub[(doc.subscription, day, code)] = [units, events]
            for reason, (units, events) in doc.unbillable.items():
                unbillable[(doc.subscription, reason)] = (units, events)
        elif key.startswith("day."):
            _, token, day = key.split(".")
            for part in DayTotals.from_json(value).slices.values():
                for slice_key, (units, events) in part.by_key.items():
                    row = by_day[(subscription_of(token), day, split_key(slice_key)[0])]
                    row[0] += units
                    row[1] += events
        elif key == "checkpoint":
            checkpoint = Checkpoint.from_json(value)
    return by_sub, {k: v for k, v in by_day.items() if v[1]}, checkpoint.dead_letters, unbillable


def assert_exact(url: str) -> None:
    expected, dead_reasons, unbillable = straight_sum(url)
    by_sub, by_day, kept_dead, kept_unbillable = kept_totals(url)
    assert by_sub == expected
    assert by_day == expected
    # Reasons are counted per letter: a second letter for one message is a second letter.
    assert kept_dead == dead_reasons
    assert kept_unbillable == unbillable


class StepKiller:
    """Raises (or does ``action``) at the ``at``-th step of a pass."""

    def __init__(self, at: int, action=None):
        self.at, self.seen, self.action = at, [], action

    def __call__(self, name: str) -> None:
        self.seen.append(name)
        if len(self.seen) == self.at:
            if self.action:
                self.action()
            raise Killed(name)


def add_work(url: str, rng: random.Random, start: int, n: int = 12) -> int:
    """Publish ``n`` events, dead-letter two of the ledger's messages (one of them twice), copy one to
    USAGE_UNBILLABLE; returns the next event number."""
    publish_to_ledger(url, [event(i, rng) for i in range(start, start + n)])
    last = run(url, lambda js: js.stream_info("USAGE")).state.last_seq
    first, second = rng.sample(range(1, last + 1), 2)
    side_copy(url, "USAGE_DLQ", first, "written_by_test", f"dlq:{first}:{start}")
    side_copy(url, "USAGE_DLQ", first, "written_by_test", f"dlq:{first}:{start}:again")  # after the dedup window
    side_copy(url, "USAGE_DLQ", second, "lago_refused", f"dlq:{second}:{start}")
    side_copy(url, "USAGE_UNBILLABLE", rng.randrange(1, last + 1), "period_closed", f"unb:{start}")
    return start + n


def test_a_pass_killed_at_each_step_is_finished_by_the_next_exactly(nats_server):
    rng = random.Random(11)
    url, start = nats_server.url, add_work(nats_server.url, rng, 0)
    recorder = StepKiller(at=-1)
    tally(url, recorder)
    steps = len(recorder.seen)
    assert steps >= 10, recorder.seen  # several ledger batches, dead letters and unbillable copies
    assert_exact(url)
    for at in range(1, steps + 1):
        start = add_work(url, rng, start)
        killer = StepKiller(at)
        with pytest.raises(Killed):
            tally(url, killer)
        tally(url)
        assert_exact(url)


def test_a_pass_whose_process_exits_or_whose_nats_server_is_killed_loses_nothing(nats_server):
    rng = random.Random(12)
    url, start = nats_server.url, add_work(nats_server.url, rng, 0)
    tally(url)
    script = ("import os, sys, time\n"
              "sys.path[:0] = ['tests', '.']\n"
              "from integration.test_running_totals import tally, StepKiller\n"
              "def die(): os._exit(3)\n"
              "tally(os.environ['NATS_URL'], StepKiller(int(sys.argv[1]), die))\n")
    for at in (1, 2, 4, 6, 9):
        start = add_work(url, rng, start)
        exited = subprocess.run([sys.executable, "-c", script, str(at)], cwd=ROOT, capture_output=True, text=True,
                                env={**os.environ, "NATS_URL": url})
        assert exited.returncode == 3, exited.stderr[-2000:]
        tally(url)
        assert_exact(url)
    for at in (2, 5, 8):
        start = add_work(url, rng, start)
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises when its server vanishes
            tally(url, StepKiller(at, lambda: (nats_server.process.kill(), nats_server.process.wait())))
        nats_server.restart()
        tally(url)
        assert_exact(url)


def test_a_pass_out_of_time_saves_where_it_got_to_and_the_next_goes_on(nats_server):
    rng = random.Random(13)
    url = nats_server.url
    publish_to_ledger(url, [event(i, rng) for i in range(40)])
    # No dead-letter or unbillable stream yet: only the ledger is read.
    assert tally(url, deadline=-1) == {"applied": {"USAGE": 0}, "through": {}, "caught_up": False,
                                       "touched_subscriptions": 0}
    # Out of time once the first batch of 7 is checkpointed (the fifth step): the rest waits.
    first = tally(url, batch=7, out_of_time_after=5)
    assert first["caught_up"] is False and first["applied"]["USAGE"] == 7 and first["through"] == {"ledger": 7}
    second = tally(url, batch=7)
    assert second["caught_up"] is True and second["applied"]["USAGE"] == 33 and second["through"] == {"ledger": 40}
    assert_exact(url)
    assert tally(url)["applied"] == {"USAGE": 0}


def test_totals_equal_a_straight_sum_after_random_interleavings(nats_server, lago_sync, lago, lago_client):
    """Publishing, lago_sync shipping (it dead-letters events Lago refuses), and passes killed at random steps,
    in a random order; then one clean pass."""
    from conftest import LambdaContext, seed_per_token_plan

    seed_per_token_plan(lago_client, {s: f"cust {s}" for s in SUBSCRIPTIONS[:3]})  # the fourth is unknown to Lago
    url, rng, start = nats_server.url, random.Random(14), 0
    for _ in range(25):
        action = rng.choice(["publish", "publish", "ship", "killed", "pass", "letters"])
        if action in ("publish", "killed"):
            events = [event(i, rng) for i in range(start, start + rng.randrange(1, 30))]
            for e in events[:: rng.randrange(3, 9)]:
                e["properties"]["tokens"] = -e["properties"]["tokens"]  # lago_sync dead-letters what breaks the contract
            publish_to_ledger(url, events)
            start += len(events)
        if action == "letters" and start:
            start = add_work(url, rng, start, n=3)
        elif action == "ship":
            lago_sync.lambda_handler({}, LambdaContext())
        elif action == "killed":
            with pytest.raises(Killed):
                tally(url, StepKiller(rng.randrange(1, 4)), batch=rng.randrange(1, 20))
        else:
            tally(url, batch=rng.randrange(1, 50))
    tally(url)
    assert_exact(url)
    dead = {m.headers["Tokenmeter-Reason"] for m in stream_messages(url, "USAGE_DLQ")}
    assert "invalid_event" in dead  # lago_sync's own dead letters were among those taken away
