"""lago_sync against a real nats-server and the Lago emulator over HTTP. Expected totals are
summed by the test from the events it published, independently of the code under test."""

import asyncio
import json
import random
import time
from collections import Counter

import pytest
from conftest import IN_PERIOD, LambdaContext, publish_to_ledger, seed_per_token_plan, stream_messages

SUBSCRIPTIONS = {"sub_acme": "acme", "sub_globex": "globex", "sub_initech": "initech"}
MODELS = ["gpt-4o", "llama3.1:8b", "claude-3-5-haiku"]
TYPES = ["input", "output", "cached_input"]


def workload(n, seed=1, subscriptions=tuple(SUBSCRIPTIONS)):
    rng = random.Random(seed)
    return [{"transaction_id": f"{seed:04d}{i:028x}-{rng.choice(TYPES)}", "external_subscription_id": rng.choice(subscriptions),
             "code": "llm_tokens", "timestamp": f"{IN_PERIOD - rng.randint(0, 86400 * 10)}.{rng.randint(0, 999):03d}",
             "properties": {"tokens": rng.randint(1, 5000), "model": rng.choice(MODELS), "token_type": rng.choice(TYPES)}}
            for i in range(n)]


def expected_totals(events):
    totals = Counter()
    for e in {e["transaction_id"]: e for e in events}.values():
        totals[e["external_subscription_id"]] += e["properties"]["tokens"]
    return totals


def lago_totals(client):
    totals = {}
    for subscription, customer in SUBSCRIPTIONS.items():
        usage = client.customers.current_usage(customer, subscription)
        totals[subscription] = sum(int(float(c.units)) for c in usage.charges_usage)
    return totals


def gpt4o_output_units(client, customer, subscription):
    usage = client.customers.current_usage(customer, subscription)
    return next(int(float(f.units)) for f in usage.charges_usage[0].filters if f.values)


def run_until_drained(app, runs=60, remaining_ms=30_000):
    summaries = []
    for _ in range(runs):
        summary = app.lambda_handler({"source": "aws.events"}, LambdaContext(remaining_ms=remaining_ms))
        summaries.append(summary)
        if summary["drained"] and summary["pending"] == 0:
            return summaries
    raise AssertionError(f"not drained after {runs} runs: {summaries[-1]}")


def test_happy_path_totals_are_exact(lago_sync, reconcile, nats_server, lago_client):
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(450)
    publish_to_ledger(nats_server.url, events)
    summaries = run_until_drained(lago_sync)
    assert summaries[0]["shipped"] == 450 and summaries[0]["dead_lettered"] == {}
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}
    expected_output = sum(e["properties"]["tokens"] for e in events if e["external_subscription_id"] == "sub_acme"
                          and e["properties"]["model"] == "gpt-4o" and e["properties"]["token_type"] == "output")
    assert gpt4o_output_units(lago_client, "acme", "sub_acme") == expected_output
    report = reconcile.lambda_handler({}, LambdaContext())["reconciliation"]
    assert report["drifting"] == [] and report["subscriptions"] == len(SUBSCRIPTIONS)


def test_events_published_twice_or_already_in_lago_bill_once(lago_sync, nats_server, lago_client, lago):
    from lago_python_client.models import BatchEvent, Event

    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(300)
    lago_client.events.batch_create(BatchEvent(events=[Event(**e) for e in events[:40]]))
    publish_to_ledger(nats_server.url, events)
    publish_to_ledger(nats_server.url, events[100:200])  # within the dedup window: no new stream messages
    summaries = run_until_drained(lago_sync)
    assert summaries[0]["already_billed"] == 40 and summaries[0]["shipped"] == 260
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}
    assert lago.admin("stats")["events"] == 300


def test_faults_in_lago_cost_retries_never_tokens(lago_sync, nats_server, lago_client, lago):
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(600, seed=3)
    publish_to_ledger(nats_server.url, events)
    lago.set_faults(error_rate=0.2, drop_rate=0.1, drop_after_store_rate=0.15, rate_limit_next=3, rate_limit_reset=1,
                    seed=11)
    retried = 0
    for _ in range(40):
        summary = lago_sync.lambda_handler({}, LambdaContext(remaining_ms=20_000))
        retried += summary["retried"]
        if summary["drained"] and summary["retried"] == 0:
            break
    assert retried > 0  # the faults did bite
    lago.set_faults()
    summaries = run_until_drained(lago_sync)
    assert all(not s["dead_lettered"] for s in summaries)
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}
    assert lago.admin("stats")["events"] == 600


def test_invalid_events_are_dead_lettered_and_the_rest_shipped(lago_sync, nats_server, lago_client):
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(50)
    bad = {**events[0], "transaction_id": "bad-1", "timestamp": "2026-11-15T12:00:00Z"}
    publish_to_ledger(nats_server.url, events, raw=[("usage.sub_acme.llm_tokens", json.dumps(bad).encode()),
                                                    ("usage.sub_acme.llm_tokens", b"not json")])
    summary = run_until_drained(lago_sync)[0]
    assert summary["shipped"] == 50 and summary["dead_lettered"] == {"invalid_event": 2}
    letters = stream_messages(nats_server.url, "USAGE_DLQ")
    assert sorted(m.headers["Tokenmeter-Reason"] for m in letters) == ["invalid_event", "invalid_event"]
    assert all(m.subject == "usage_dlq.sub_acme.llm_tokens" for m in letters)
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}


def test_lago_rejections_are_dead_lettered_with_lagos_reason(lago, lago_client):
    import time

    from tokenmeter.core import UsageEvent
    from tokenmeter.shipping.lago_api import LagoApi

    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    good = [UsageEvent.from_dict(e) for e in workload(3)]
    # Built around the contract's validation, as an older producer might have sent it.
    iso = UsageEvent("iso-1", "sub_acme", "llm_tokens", "2026-11-15T12:00:00Z", {"tokens": 5})
    async def ship():
        api = LagoApi(lago.url, lago.api_key)
        try:
            return await api.ship([good[0], iso, good[1], good[2]], deadline=time.monotonic() + 10)
        finally:
            await api.close()

    result = asyncio.run(ship())
    assert sorted(result.stored) == [0, 2, 3] and result.rejected == {1: "timestamp: invalid_format"}


def test_unknown_subscription_is_held_then_dead_lettered(lago_sync, nats_server, lago_client, monkeypatch):
    import time

    monkeypatch.setenv("UNKNOWN_SUBSCRIPTION_RETRY_SECONDS", "1")
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(20) + workload(5, seed=9, subscriptions=("sub_nobody",))
    publish_to_ledger(nats_server.url, events)
    first = lago_sync.lambda_handler({}, LambdaContext())
    assert first["shipped"] == 20 and first["held"] == 5 and first["dead_lettered"] == {}
    # A new environment whose hold horizon has passed for these events.
    old = lago_sync._runtime.nats
    old.run(old.close())
    monkeypatch.setenv("UNKNOWN_SUBSCRIPTION_HOLD_SECONDS", "0")
    monkeypatch.setattr(lago_sync, "_runtime", None)
    time.sleep(1.2)  # the held events come back after their nak delay
    assert lago_sync.lambda_handler({}, LambdaContext())["dead_lettered"] == {"unknown_subscription": 5}


def test_a_short_deadline_stops_in_time_and_the_next_run_carries_on(lago_sync, nats_server, lago_client, lago,
                                                                    monkeypatch):
    import time

    monkeypatch.setenv("LAGO_SYNC_FETCH_BATCH", "100")  # one Lago batch per fetch
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(1000, seed=5)
    publish_to_ledger(nats_server.url, events)
    lago.set_faults(latency_ms=300)  # every Lago call takes 0.3 s
    started = time.monotonic()
    first = lago_sync.lambda_handler({}, LambdaContext(remaining_ms=3_000))
    assert time.monotonic() - started < 3.0
    assert not first["drained"] and 0 < first["shipped"] < 1000
    lago.set_faults()
    run_until_drained(lago_sync)
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}


def test_the_next_batch_is_asked_for_ahead_only_while_there_is_time_to_ship_it(lago_sync, nats_server, lago_client,
                                                                              lago, monkeypatch):
    """A batch asked for ahead and handed back unshipped at the end still counts as delivered, and retries
    back off by deliveries: a run asks ahead only while it has its Lago timeout and a second left."""
    from tokenmeter.shipping.puller import Puller

    asked: list[bool] = []
    fetch = Puller.fetch

    async def recording(self, batch, timeout, prefetch=False):
        asked.append(prefetch)
        return await fetch(self, batch, timeout, prefetch)

    monkeypatch.setattr(Puller, "fetch", recording)
    monkeypatch.setenv("LAGO_SYNC_FETCH_BATCH", "100")
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(1000, seed=9)
    publish_to_ledger(nats_server.url, events)
    lago.set_faults(latency_ms=300)
    short = lago_sync.lambda_handler({}, LambdaContext(remaining_ms=3_000))  # 2 s to ship; Lago's timeout is 5 s
    assert asked and not any(asked) and not short["drained"]
    lago.set_faults()
    asked.clear()
    run_until_drained(lago_sync)
    assert asked[0] is True  # with time to ship it, the next batch is on its way while this one is checked
    assert lago_totals(lago_client) == {s: expected_totals(events)[s] for s in SUBSCRIPTIONS}


def test_reconciliation_heals_lost_events_and_reports_extra_usage(lago_sync, reconcile, nats_server, lago_client, lago):
    from lago_python_client.models import Event

    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    events = workload(200, seed=7)
    publish_to_ledger(nats_server.url, events)
    run_until_drained(lago_sync)
    lost = [e["transaction_id"] for e in events if e["external_subscription_id"] == "sub_globex"][:15]
    assert lago.admin("delete_events", {"transaction_ids": lost}) == {"deleted": 15}
    lago_client.events.create(Event(transaction_id="extra-1", external_subscription_id="sub_initech", code="llm_tokens",
                                    timestamp=str(IN_PERIOD), properties={"tokens": 777, "model": "gpt-4o", "token_type": "input"}))
    result = reconcile.lambda_handler({"sweep": True}, LambdaContext())["reconciliation"]
    drifting = {d["external_subscription_id"]: d for d in result["drifting"]}
    assert drifting["sub_globex"]["status"] == "healed" and drifting["sub_globex"]["healed_events"] == 15
    assert drifting["sub_initech"]["status"] == "lago_over" and drifting["sub_initech"]["drift"] == "-777"
    totals = lago_totals(lago_client)
    assert totals["sub_globex"] == expected_totals(events)["sub_globex"]
    assert totals["sub_initech"] == expected_totals(events)["sub_initech"] + 777


@pytest.mark.parametrize("missing", ["LAGO_API_URL", "LAGO_API_KEY"])
def test_missing_lago_settings_are_clear_errors(lago_sync, monkeypatch, missing):
    from tokenmeter.core import MeteringConfigError

    monkeypatch.delenv(missing)
    with pytest.raises(MeteringConfigError, match="LAGO_API"):
        lago_sync.lambda_handler({}, LambdaContext())


def test_responses_slower_than_the_timeout_are_retried_not_lost(lago_sync, nats_server, lago_client, lago, monkeypatch):
    monkeypatch.setenv("LAGO_TIMEOUT_SECONDS", "0.3")
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    first, late = workload(100, seed=13), workload(200, seed=14)
    publish_to_ledger(nats_server.url, first)
    run_until_drained(lago_sync)  # the subscriptions are known and cached from here on
    publish_to_ledger(nats_server.url, late)
    lago.set_faults(latency_ms=600)  # Lago stores each batch, but answers after the client gave up
    slow = lago_sync.lambda_handler({}, LambdaContext(remaining_ms=20_000))
    assert slow["shipped"] == 0 and slow["retried"] == 200 and slow["dead_lettered"] == {}
    for _ in range(100):  # the emulator finishes storing the batches the client gave up on
        if lago.admin("stats")["events"] == 300:
            break
        time.sleep(0.05)
    lago.set_faults()
    again = run_until_drained(lago_sync)
    assert sum(s["already_billed"] for s in again) == 200  # stored before: acked as billed, not billed twice
    assert lago_totals(lago_client) == {s: expected_totals(first + late)[s] for s in SUBSCRIPTIONS}


def test_waiting_on_lago_never_blocks_the_event_loop(lago, lago_client):
    """NATS acks, pings and the next fetch share the loop with Lago's calls: a slow Lago must not stall it."""
    from tokenmeter.shipping.lago_api import LagoApi

    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    lago.set_faults(latency_ms=400)

    async def measure():
        api, ticks = LagoApi(lago.url, lago.api_key), []

        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        try:
            found = await asyncio.gather(*(api.subscription(s) for s in SUBSCRIPTIONS))
        finally:
            ticker.cancel()
            await api.close()
        return found, max(b - a for a, b in zip(ticks, ticks[1:]))

    found, longest_gap = asyncio.run(measure())
    assert all(s is not None and s.status == "active" for s in found)
    assert longest_gap < 0.15, longest_gap  # the loop ran on while three 0.4 s lookups were in flight


def test_a_rate_limit_wait_never_runs_past_the_deadline_margin(lago_sync, nats_server, lago_client, lago, monkeypatch):
    monkeypatch.setenv("LAGO_SYNC_DEADLINE_MARGIN_SECONDS", "1")
    seed_per_token_plan(lago_client, SUBSCRIPTIONS)
    publish_to_ledger(nats_server.url, workload(50, seed=31))
    lago_sync.lambda_handler({}, LambdaContext())  # subscriptions and metric looked up and cached
    publish_to_ledger(nats_server.url, workload(50, seed=32))
    lago.set_faults(rate_limit_next=100, rate_limit_reset=3)  # Lago says: come back in 3 s
    started = time.monotonic()
    summary = lago_sync.lambda_handler({}, LambdaContext(remaining_ms=3_500))
    assert time.monotonic() - started < 2.5  # 3.5 s left, 1 s margin: a 3 s wait does not fit, so none is made
    assert summary["shipped"] == 0 and summary["retried"] == 50
