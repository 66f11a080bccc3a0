"""The reconcile function on its own schedule: periods in the customer's timezone, late usage reported as
unbillable rather than drift, copies of one transaction id, and passes that resume where they stopped."""

from __future__ import annotations

from contextlib import contextmanager

from conftest import LambdaContext, publish_to_ledger, seed_per_token_plan, stream_messages
from lago_python_client.client import Client
from lago_python_client.models import Customer, Subscription

from local.functions import load_function_app


@contextmanager
def functions(monkeypatch, nats_server, lago, **env):
    for key, value in {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                       "LAGO_SYNC_RETRY_MAX_SECONDS": "0.05", "RECONCILE_SETTLE_SECONDS": "0", **env}.items():
        monkeypatch.setenv(key, value)
    apps = [load_function_app(name) for name in ("lago_sync", "reconcile")]
    for app in apps:
        monkeypatch.setattr(app, "_runtime", None)
    try:
        yield apps
    finally:
        for app in apps:
            if app._runtime is not None:
                app._runtime.nats.run(app._runtime.nats.close())
                app._runtime.nats.loop.close()


def usage(n: int, subscription: str, stamp: str, tokens: int) -> dict:
    return {"transaction_id": f"{subscription}-{n}", "external_subscription_id": subscription, "code": "llm_tokens",
            "timestamp": stamp, "properties": {"tokens": tokens, "model": "gpt-4o", "token_type": "input"}}


def test_a_period_in_the_customers_timezone_rolls_over_at_local_midnight(start_lago, nats_server, monkeypatch):
    # Lago's clock: 15 October 2026. The customer is in Asia/Kathmandu (UTC+05:45), on a monthly calendar plan:
    # the current period is 1-31 October local, 2026-09-30T18:15:00Z .. 2026-10-31T18:14:59.999Z.
    lago = start_lago(now="2026-10-15T12:00:00Z")
    client = Client(api_key=lago.api_key, api_url=lago.url)
    seed_per_token_plan(client, {})
    client.customers.create(Customer(external_id="cust_ktm", name="Kathmandu", currency="USD",
                                     timezone="Asia/Kathmandu"))
    client.subscriptions.create(Subscription(external_customer_id="cust_ktm", plan_code="per_token",
                                             external_id="sub_ktm", subscription_at="2026-01-01T00:00:00Z"))
    events = [usage(1, "sub_ktm", "1790792099.999", 1),  # 2026-09-30T23:59:59.999 local: last period, closed
              usage(2, "sub_ktm", "1790792100.000", 10),  # 2026-10-01T00:00:00.000 local
              usage(3, "sub_ktm", "1793470499.999", 100),  # 2026-10-31T23:59:59.999 local: the last millisecond
              usage(4, "sub_ktm", "1793470500.000", 1000)]  # 2026-11-01T00:00:00.000 local: the next period
    publish_to_ledger(nats_server.url, events)
    with functions(monkeypatch, nats_server, lago) as (ship, check):
        shipped = ship.lambda_handler({}, LambdaContext())
        assert shipped["shipped"] == 4 and shipped["unbillable"] == {"period_closed": 1}
        report = check.lambda_handler({}, LambdaContext())["reconciliation"]
    assert report["drifting"] == [] and report["subscriptions"] == 1 and report["skipped"] == {}
    usage_now = client.customers.current_usage("cust_ktm", "sub_ktm")
    assert usage_now.from_datetime.startswith("2026-09-30T18:15:00") and float(usage_now.charges_usage[0].units) == 110
    late = stream_messages(nats_server.url, "USAGE_UNBILLABLE")
    assert [(m.headers["Tokenmeter-Reason"], m.headers["Tokenmeter-Transaction-Id"]) for m in late] == [
        ("period_closed", "sub_ktm-1")]


def test_a_copy_stored_after_the_dedup_window_is_dead_lettered_not_reported_as_drift(lago_sync, reconcile, nats_server,
                                                                                    lago, lago_client):
    seed_per_token_plan(lago_client, {"sub_a": "cust_a"})
    events = [usage(i, "sub_a", f"{1_794_744_000 + i}.000", 10 + i) for i in range(20)]
    publish_to_ledger(nats_server.url, events)
    # Two of them again under new message ids: the ledger's dedup window has passed (a re-delivery days later).
    _republish(nats_server.url, events[3:5])
    assert len(stream_messages(nats_server.url)) == 22
    assert lago_sync.lambda_handler({}, LambdaContext())["already_billed"] == 2  # Lago bills them once
    first = reconcile.lambda_handler({}, LambdaContext())["reconciliation"]
    # The totals counted 22 events; narrowing finds the two copies and takes them away.
    assert first["drifting"] == []
    letters = stream_messages(nats_server.url, "USAGE_DLQ")
    assert sorted(m.headers["Tokenmeter-Transaction-Id"] for m in letters) == ["sub_a-3", "sub_a-4"]
    assert {m.headers["Tokenmeter-Reason"] for m in letters} == {"duplicate_copy"}
    assert sorted(int(m.headers["Tokenmeter-Source"].rsplit(":", 1)[1]) for m in letters) == [21, 22]
    second = reconcile.lambda_handler({"sweep": True}, LambdaContext())
    assert second["totals"]["applied"]["USAGE_DLQ"] == 2
    assert second["reconciliation"]["drifting"] == [] and second["reconciliation"]["healed_events"] == 0
    assert lago.admin("stats")["events"] == 20


def _republish(url: str, events: list[dict]) -> None:
    import asyncio

    import nats
    import orjson

    from tokenmeter.nats import subject_for

    async def go():
        nc = await nats.connect(url)
        js = nc.jetstream()
        for e in events:
            await js.publish(subject_for("usage", e["external_subscription_id"], e["code"]), orjson.dumps(e),
                             headers={"Nats-Msg-Id": f"{e['transaction_id']}:days-later"})
        await nc.close()

    asyncio.run(go())


def test_a_pass_out_of_time_leaves_the_rest_due_and_the_next_begins_after_where_it_stopped(
        reconcile, lago_sync, nats_server, lago_client, monkeypatch):
    subscriptions = {f"sub_{i:02d}": f"cust_{i:02d}" for i in range(12)}
    seed_per_token_plan(lago_client, subscriptions)
    publish_to_ledger(nats_server.url, [usage(i, s, "1794744000.000", 5) for i, s in enumerate(subscriptions)])
    lago_sync.lambda_handler({}, LambdaContext())
    # The events are an hour from settled: every subscription stays due after its check.
    monkeypatch.setenv("RECONCILE_SETTLE_SECONDS", "3600")
    monkeypatch.setenv("RECONCILE_CONCURRENCY", "1")
    checked: list[str] = []
    real = reconcile.Reconciler._check

    async def spy(self, subscription, complete_from_ms):
        checked.append(subscription)
        if len(checked) == 5 and stop[0]:
            self.deadline = 0  # the pass runs out of time during its fifth check
        return await real(self, subscription, complete_from_ms)

    stop = [True]
    monkeypatch.setattr(reconcile.Reconciler, "_check", spy)
    first = reconcile.lambda_handler({}, LambdaContext())["reconciliation"]
    assert first["subscriptions"] == 5 and first["waiting"] == 7 and checked == sorted(subscriptions)[:5]
    assert first["drifting"] == []  # Lago already shows them all; they stay due until settled
    checked.clear()
    stop[0] = False
    second = reconcile.lambda_handler({}, LambdaContext())["reconciliation"]
    # The next pass begins after sub_04, and comes round to the first five last.
    assert checked == sorted(subscriptions)[5:] + sorted(subscriptions)[:5]
    assert second["subscriptions"] == 12 and second["waiting"] == 0
