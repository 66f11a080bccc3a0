"""lago_sync against the Lago users run: any subscription id, both event stores, usage that shows up
late, subscriptions that have not started or have ended, keys that rotate or lack a permission.
Real nats-server, the emulator over HTTP; expected totals summed by the test from what it published."""

import json
import time
import zlib
from urllib.parse import quote

import httpx
import pytest
from conftest import IN_PERIOD, LambdaContext, publish_to_ledger, seed_per_token_plan, stream_messages
from lago_python_client.client import Client

from local.functions import load_function_app
from tokenmeter.cli.cli import main as tokenmeter

AWKWARD = {"acme/eu west": "cust.acme", "team.alpha": "cust/team", "what?now": "cust what", "hash#tag": "cust#1",
           "50%off": "cust%20", "ünïcødé-客户": "客户.1"}


def events_for(subscription, n, start=0, at=IN_PERIOD, token_type="input"):
    return [{"transaction_id": f"{zlib.crc32(subscription.encode()):08x}-{i:04d}-{token_type}",
             "external_subscription_id": subscription, "code": "llm_tokens", "timestamp": f"{at - i * 60}.500",
             "properties": {"tokens": 10 * (i + 1), "model": "gpt-4o", "token_type": token_type}}
            for i in range(start, start + n)]


def total(events):
    return sum(e["properties"]["tokens"] for e in events)


def drain_runs(app, runs=30):
    summaries = []
    for _ in range(runs):
        summaries.append(app.lambda_handler({}, LambdaContext()))
        if summaries[-1]["pending"] == 0:
            return summaries
        time.sleep(0.1)
    raise AssertionError(f"not drained: {summaries[-1]}")


def units(lago, customer, subscription):
    """Lago's billed units for a subscription, read over HTTP with the ids encoded as Lago's routes need."""
    segment = quote(customer, safe="").replace(".", "%2E")
    response = httpx.get(f"{lago.url}/api/v1/customers/{segment}/current_usage",
                         params={"external_subscription_id": subscription},
                         headers={"Authorization": f"Bearer {lago.api_key}"})
    assert response.status_code == 200, response.text
    return sum(int(float(c["units"])) for c in response.json()["customer_usage"]["charges_usage"])


def test_awkward_ids_ship_preview_and_reconcile(lago_sync, reconcile, nats_server, lago_client, lago, capsys):
    seed_per_token_plan(lago_client, {})
    for subscription, customer in AWKWARD.items():  # lago-python-client joins ids into paths unencoded: go by HTTP
        answer = httpx.post(f"{lago.url}/api/v1/subscriptions", headers={"Authorization": f"Bearer {lago.api_key}"},
                            json={"subscription": {"external_customer_id": customer, "plan_code": "per_token",
                                                   "external_id": subscription, "subscription_at": "2026-01-01T00:00:00Z"}})
        assert answer.status_code == 200, answer.text
    published = {s: events_for(s, 12) for s in AWKWARD}
    publish_to_ledger(nats_server.url, [e for batch in published.values() for e in batch])
    summaries = drain_runs(lago_sync)
    assert sum(s["shipped"] for s in summaries) == 12 * len(AWKWARD) and not any(s["held"] for s in summaries)
    for subscription, customer in AWKWARD.items():
        assert units(lago, customer, subscription) == total(published[subscription]), subscription
    report = reconcile.lambda_handler({}, LambdaContext())["reconciliation"]
    assert report["subscriptions"] == len(AWKWARD) and report["drifting"] == [] and report["skipped"] == {}

    lost = [e["transaction_id"] for e in published["what?now"][:5]]
    assert lago.admin("delete_events", {"transaction_ids": lost}) == {"deleted": 5}
    # Lost on Lago's side with no new usage: the daily sweep is the pass that looks again.
    assert reconcile.lambda_handler({}, LambdaContext())["reconciliation"]["subscriptions"] == 0
    healed = reconcile.lambda_handler({"sweep": True}, LambdaContext())["reconciliation"]["drifting"]
    assert [(d["external_subscription_id"], d["status"], d["healed_events"]) for d in healed] == [("what?now", "healed", 5)]
    assert units(lago, "cust what", "what?now") == total(published["what?now"])

    capsys.readouterr()
    assert tokenmeter(["usage", "ünïcødé-客户", "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["totals"] == [{"code": "llm_tokens", "ledger": str(total(published["ünïcødé-客户"])),
                                  "lago": str(total(published["ünïcødé-客户"])), "drift": "0"}]


@pytest.mark.parametrize("store", ["postgres", "clickhouse"])
def test_late_usage_is_not_reshipped(start_lago, nats_server, monkeypatch, store):
    lago = start_lago(event_store=store, usage_delay_ms=1500)
    seed_per_token_plan(Client(api_key=lago.api_key, api_url=lago.url), {"sub_a": "cust_a"})
    for key, value in {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                       "RECONCILE_SETTLE_SECONDS": "4", "LAGO_SYNC_RETRY_MAX_SECONDS": "0.05"}.items():
        monkeypatch.setenv(key, value)
    apps = [load_function_app(name) for name in ("lago_sync", "reconcile")]
    for app in apps:
        monkeypatch.setattr(app, "_runtime", None)
    ship, check = apps
    events = events_for("sub_a", 50)
    publish_to_ledger(nats_server.url, events)
    try:
        assert ship.lambda_handler({}, LambdaContext())["shipped"] == 50
        first = check.lambda_handler({}, LambdaContext())["reconciliation"]
        # Lago shows nothing yet: the events are too fresh to judge, so nothing is sent again.
        assert first["drifting"] == [] and first["settling"] == 1
        time.sleep(4.2)  # usage caught up, and the events have settled
        second = check.lambda_handler({}, LambdaContext())["reconciliation"]
        assert second["drifting"] == [] and second["settling"] == 0 and second["healed_events"] == 0
        assert second["subscriptions"] == 1  # still due after the pass that found it settling
        assert lago.admin("stats")["events"] == 50  # no copy was ever sent
    finally:
        for app in apps:
            if app._runtime is not None:
                app._runtime.nats.run(app._runtime.nats.close())
                app._runtime.nats.loop.close()


def test_unbillable_usage_is_shipped_reported_and_counted(lago_sync, nats_server, lago, capsys):
    http = httpx.Client(base_url=f"{lago.url}/api/v1", headers={"Authorization": f"Bearer {lago.api_key}"})
    seed_per_token_plan(Client(api_key=lago.api_key, api_url=lago.url), {"sub_month": "cust_m"})
    http.post("/plans", json={"plan": {"name": "w", "code": "weekly", "interval": "weekly", "amount_cents": 0,
                                       "amount_currency": "USD", "charges": [{
                                           "billable_metric_id": http.get("/billable_metrics/llm_tokens").json()[
                                               "billable_metric"]["lago_id"], "charge_model": "standard",
                                           "properties": {"amount": "0.001"}}]}})
    # The clock is Sunday 2026-11-15T12:00Z: this week runs from Monday 2026-11-09 (UTC).
    for subscription, plan, at in (("sub_week", "weekly", "2026-01-01T00:00:00Z"),
                                   ("sub_late", "per_token", "2026-11-10T00:00:00Z"),
                                   ("sub_next", "per_token", "2026-12-01T00:00:00Z"),
                                   ("sub_gone", "per_token", "2026-01-01T00:00:00Z")):
        assert http.post("/subscriptions", json={"subscription": {"external_customer_id": f"c_{subscription}",
                                                                   "plan_code": plan, "external_id": subscription,
                                                                   "subscription_at": at}}).status_code == 200
    assert http.delete("/subscriptions/sub_gone").status_code == 200
    nov_12, nov_3 = 1_794_484_800, 1_793_707_200  # 2026-11-12T12:00Z, 2026-11-03T12:00Z
    billable = events_for("sub_week", 3, at=nov_12) + events_for("sub_late", 2, at=nov_12)
    late = events_for("sub_week", 4, start=10, at=nov_3)  # last week's: that week was invoiced
    early = events_for("sub_late", 3, start=10, at=nov_3)  # before the subscription started
    pending = events_for("sub_next", 2, at=nov_12)
    ended = events_for("sub_gone", 2, at=nov_12)
    publish_to_ledger(nats_server.url, billable + late + early + pending + ended)
    summaries = drain_runs(lago_sync)
    counted = {}
    for summary in summaries:
        for reason, n in summary["unbillable"].items():
            counted[reason] = counted.get(reason, 0) + n
    assert counted == {"period_closed": 4, "before_subscription_start": 5, "subscription_ended": 2}
    assert sum(s["shipped"] for s in summaries) == 16  # shipped all the same: Lago stores them
    assert lago.admin("stats")["events"] == 16
    copies = stream_messages(nats_server.url, "USAGE_UNBILLABLE")
    assert sorted(m.headers["Tokenmeter-Transaction-Id"] for m in copies) == sorted(
        e["transaction_id"] for e in late + early + pending + ended)
    assert units(lago, "c_sub_week", "sub_week") == total(billable[:3])
    assert units(lago, "c_sub_late", "sub_late") == total(billable[3:])

    capsys.readouterr()
    assert tokenmeter(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unbillable"] == {"period_closed": 4, "before_subscription_start": 5,
                                                                 "subscription_ended": 2}
    assert tokenmeter(["usage", "sub_week", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unbillable"] == [
        {"reason": "period_closed", "events": 4, "tokens": str(total(late))}]


def test_a_rotated_key_is_read_again_and_a_refused_one_fails_the_run(aws, lago_sync, nats_server, lago, monkeypatch):
    import boto3

    from tokenmeter.shipping.lago_api import LagoAuthError

    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="lago-key", SecretString=lago.api_key)["ARN"]
    monkeypatch.delenv("LAGO_API_KEY")
    monkeypatch.setenv("LAGO_API_KEY_SECRET_ARN", arn)
    seed_per_token_plan(Client(api_key=lago.api_key, api_url=lago.url), {"sub_a": "cust_a"})
    publish_to_ledger(nats_server.url, events_for("sub_a", 5))
    assert lago_sync.lambda_handler({}, LambdaContext())["shipped"] == 5

    # Rotation: Lago takes only the new key, and the secret holds it; the same run picks it up.
    lago.set_api_keys({"rotated-key-2": None})
    secrets.put_secret_value(SecretId=arn, SecretString="rotated-key-2")
    publish_to_ledger(nats_server.url, events_for("sub_a", 5, start=5))
    assert lago_sync.lambda_handler({}, LambdaContext())["shipped"] == 5

    # A key Lago refuses even after reading it again, or one without the permission: the run fails.
    lago.set_api_keys({"rotated-key-3": None, "rotated-key-2": {"customer_usage": ["read"]}})
    publish_to_ledger(nats_server.url, events_for("sub_a", 5, start=10))
    with pytest.raises(LagoAuthError, match="403"):
        lago_sync.lambda_handler({}, LambdaContext())
    lago.set_api_keys({"rotated-key-4": None})
    with pytest.raises(LagoAuthError, match="401"):
        lago_sync.lambda_handler({}, LambdaContext())
    secrets.put_secret_value(SecretId=arn, SecretString="rotated-key-4")
    monkeypatch.setenv("LAGO_SYNC_RETRY_MAX_SECONDS", "0.05")
    old = lago_sync._runtime  # a new environment: it reads the (now stale) cached secret first
    old.nats.run(old.nats.close())
    old.nats.loop.close()
    monkeypatch.setattr(lago_sync, "_runtime", None)
    time.sleep(0.1)
    shipped = sum(s["shipped"] + s["already_billed"] for s in drain_runs(lago_sync))
    assert shipped == 5 and lago.admin("stats")["events"] == 15  # nothing lost, nothing twice


def test_a_per_index_message_is_a_dead_letter_with_lagos_words(lago_sync, nats_server, lago, monkeypatch):
    # Events that keep tokenmeter's contract and still fail in Lago: its metric's expression needs a property
    # (allowed by the metering config) that one event lacks.
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"extra_properties": ["ms"]}))
    http = httpx.Client(base_url=f"{lago.url}/api/v1", headers={"Authorization": f"Bearer {lago.api_key}"})
    metric = http.post("/billable_metrics", json={"billable_metric": {
        "name": "t", "code": "llm_tokens", "aggregation_type": "sum_agg", "field_name": "seconds",
        "expression": "round(event.properties.ms / 1000)"}}).json()["billable_metric"]
    http.post("/plans", json={"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0,
                                       "amount_currency": "USD", "charges": [{"billable_metric_id": metric["lago_id"],
                                                                              "charge_model": "standard"}]}})
    http.post("/subscriptions", json={"subscription": {"external_customer_id": "c", "plan_code": "p",
                                                       "external_id": "sub_a", "subscription_at": "2026-01-01T00:00:00Z"}})
    good = [{**e, "properties": {**e["properties"], "ms": 2400}} for e in events_for("sub_a", 2)]
    bad = {**events_for("sub_a", 1, start=5)[0], "transaction_id": "no-ms"}
    publish_to_ledger(nats_server.url, [*good, bad])
    summary = lago_sync.lambda_handler({}, LambdaContext())
    assert summary["shipped"] == 2 and summary["dead_lettered"] == {"rejected_by_lago": 1}
    letters = stream_messages(nats_server.url, "USAGE_DLQ")
    assert [(m.headers["Tokenmeter-Reason"], m.headers["Tokenmeter-Detail"]) for m in letters] == [
        ("rejected_by_lago", "expression_evaluation_failed: Variable: ms not found")]
    usage = http.get("/customers/c/current_usage", params={"external_subscription_id": "sub_a"}).json()
    assert float(usage["customer_usage"]["charges_usage"][0]["units"]) == 2 * 2  # round(2400 / 1000) each
