"""The Lago emulator driven by lago-python-client, Lago's official client: every call tokenmeter
uses parses into the client's models, and errors raise the client's LagoApiError with Lago's shapes.
Expected amounts are worked out by hand from the plan's prices."""

import httpx
import pytest
from conftest import IN_PERIOD
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BatchEvent,
    BillableMetric,
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    Customer,
    Event,
    Plan,
    Subscription,
)
from lago_python_client.models.billable_metric import BillableMetricFilters
from lago_python_client.models.charge import ChargeFilters, Charges


def per_token_plan(client):
    """Lago's per-token template: sum_agg on tokens, filtered by model and token_type, priced per filter."""
    metric = client.billable_metrics.create(BillableMetric(
        name="LLM tokens", code="llm_tokens", aggregation_type="sum_agg", field_name="tokens",
        filters=BillableMetricFilters(__root__=[
            BillableMetricFilter(key="model", values=["llama3.1:8b", "gpt-4o"]),
            BillableMetricFilter(key="token_type", values=["input", "output", "cached_input"])])))
    plan = client.plans.create(Plan(
        name="Per token", code="per_token", interval="monthly", amount_cents=0, amount_currency="USD",
        charges=Charges(__root__=[Charge(
            billable_metric_id=metric.lago_id, charge_model="standard", properties={"amount": "0.00001"},
            filters=ChargeFilters(__root__=[
                ChargeFilter(values={"model": ["gpt-4o"], "token_type": ["output"]}, properties={"amount": "0.0001"}),
                ChargeFilter(values={"model": ["gpt-4o"], "token_type": ["input"]}, properties={"amount": "0.00003"}),
            ]))])))
    client.customers.create(Customer(external_id="acme", name="Acme", currency="USD"))
    subscription = client.subscriptions.create(Subscription(
        external_customer_id="acme", plan_code="per_token", external_id="sub_acme", subscription_at="2026-01-01T00:00:00Z"))
    return metric, plan, subscription


def event(n, tokens, model="gpt-4o", token_type="input", subscription="sub_acme", timestamp=None):
    return Event(transaction_id=f"txn-{n}", external_subscription_id=subscription, code="llm_tokens",
                 timestamp=timestamp if timestamp is not None else f"{IN_PERIOD + n}.250",
                 properties={"tokens": tokens, "model": model, "token_type": token_type})


def test_billing_objects_round_trip_through_the_client(lago_client):
    metric, plan, subscription = per_token_plan(lago_client)
    assert lago_client.billable_metrics.find("llm_tokens").lago_id == metric.lago_id
    assert plan.charges.__root__[0].filters.__root__[0].values == {"model": ["gpt-4o"], "token_type": ["output"]}
    found = lago_client.subscriptions.find("sub_acme")
    assert (found.external_customer_id, found.plan_code, found.status) == ("acme", "per_token", "active")
    assert subscription.lago_id == found.lago_id


def test_event_create_find_and_duplicate(lago_client):
    per_token_plan(lago_client)
    created = lago_client.events.create(event(1, 812))
    assert created.transaction_id == "txn-1" and created.timestamp == "2026-11-15T12:00:01.250Z"
    assert lago_client.events.find("txn-1").properties == {"tokens": 812, "model": "gpt-4o", "token_type": "input"}
    with pytest.raises(LagoApiError) as duplicate:
        lago_client.events.create(event(1, 812))
    assert duplicate.value.status_code == 422
    assert duplicate.value.response["error_details"] == {"transaction_id": ["value_already_exist"]}
    # The same transaction id on another subscription is another event.
    assert lago_client.events.create(event(1, 5, subscription="sub_other")).external_subscription_id == "sub_other"


def test_batch_is_atomic_and_reports_errors_by_index(lago, lago_client):
    per_token_plan(lago_client)
    assert lago_client.events.batch_create(BatchEvent(events=[event(1, 10), event(2, 20)])) is None
    batch = [event(3, 30), event(2, 20), event(4, 40, timestamp="2026-11-15T12:00:00Z")]
    with pytest.raises(LagoApiError) as invalid:
        lago_client.events.batch_create(BatchEvent(events=batch))
    # lago-api validates every event first and answers with those errors alone ...
    assert invalid.value.response["error_details"] == {"2": {"timestamp": ["invalid_format"]}}
    with pytest.raises(LagoApiError) as duplicate:
        lago_client.events.batch_create(BatchEvent(events=batch[:2]))
    # ... and only a valid batch is inserted, where an id already stored is refused.
    assert duplicate.value.response["error_details"] == {"1": {"transaction_id": ["value_already_exist"]}}
    assert lago.admin("stats")["events"] == 2  # event 3 was not stored: the batch is all or nothing
    with pytest.raises(LagoApiError) as too_many:
        lago_client.events.batch_create(BatchEvent(events=[event(100 + i, 1) for i in range(101)]))
    assert too_many.value.response["error_details"] == {"events": ["too_many_events"]}


def test_current_usage_per_charge_and_filter(lago_client):
    per_token_plan(lago_client)
    lago_client.events.batch_create(BatchEvent(events=[
        event(1, 1000, "gpt-4o", "input"), event(2, 500, "gpt-4o", "output"), event(3, 2000, "gpt-4o", "input"),
        event(4, 7000, "llama3.1:8b", "input"),
        event(5, 999_999, "gpt-4o", "input", timestamp=str(IN_PERIOD - 40 * 86400)),  # October: another period
        event(6, 50, "gpt-4o", "input", subscription="sub_unknown"),  # accepted, never billed
    ]))
    usage = lago_client.customers.current_usage("acme", "sub_acme")
    assert (usage.from_datetime, usage.to_datetime) == ("2026-11-01T00:00:00Z", "2026-11-30T23:59:59Z")
    charge = usage.charges_usage[0]
    assert charge.billable_metric.code == "llm_tokens" and charge.events_count == 4
    assert float(charge.units) == 10_500
    by_filter = {(f.values["token_type"][0] if f.values else None): f for f in charge.filters}
    output, gpt_input = by_filter["output"], by_filter["input"]
    assert output.values == {"model": ["gpt-4o"], "token_type": ["output"]}
    assert (float(output.units), output.amount_cents) == (500, 5)  # 500 x $0.0001 = $0.05
    assert (float(gpt_input.units), gpt_input.amount_cents) == (3000, 9)  # 3000 x $0.00003 = $0.09
    assert (float(by_filter[None].units), by_filter[None].amount_cents) == (7000, 7)  # 7000 x $0.00001 = $0.07
    assert usage.amount_cents == usage.total_amount_cents == 21


def test_errors_have_lagos_shapes(lago, lago_client):
    from lago_python_client.client import Client

    with pytest.raises(LagoApiError) as unauthorized:
        Client(api_key="wrong", api_url=lago.url).events.find("x")
    assert unauthorized.value.status_code == 401
    with pytest.raises(LagoApiError) as missing:
        lago_client.subscriptions.find("sub_nobody")
    assert missing.value.status_code == 404 and missing.value.response["code"] == "subscription_not_found"


def test_state_survives_a_restart(lago, lago_client):
    per_token_plan(lago_client)
    lago_client.events.create(event(1, 42))
    lago.restart()
    assert lago_client.events.find("txn-1").properties["tokens"] == 42
    assert lago_client.subscriptions.find("sub_acme").plan_code == "per_token"


def test_injected_faults(lago, lago_client):
    per_token_plan(lago_client)
    lago.set_faults(error_rate=1.0)
    with pytest.raises(LagoApiError) as server_error:
        lago_client.events.create(event(1, 1))
    assert server_error.value.status_code == 500
    lago.set_faults(rate_limit_next=1, rate_limit_reset=7)
    response = httpx.post(f"{lago.url}/api/v1/events", headers={"Authorization": f"Bearer {lago.api_key}"},
                          json={"event": event(2, 1).dict()})
    assert response.status_code == 429 and response.headers["X-RateLimit-Reset"] == "7"
    lago.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{lago.url}/api/v1/events", headers={"Authorization": f"Bearer {lago.api_key}"},
                   json={"event": event(3, 1).dict()})
    lago.set_faults()
    lago_client.events.create(event(4, 1))
    assert lago.admin("delete_events", {"transaction_ids": ["txn-4"]}) == {"deleted": 1}
    with pytest.raises(LagoApiError):
        lago_client.events.find("txn-4")
