"""The emulator's two event stores answer as lago-api's do (app/services/events/create_batch_service.rb):
Postgres refuses a reused transaction id, in a second answer after validation; ClickHouse takes every
copy and counts one per (subscription, code, timestamp, transaction id) only when dedup is on. Driven by
lago-python-client; expected units worked out by hand from the events sent."""

import time

import httpx
import pytest
from conftest import IN_PERIOD, seed_per_token_plan
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BatchEvent, Event


def client_for(lago):
    client = Client(api_key=lago.api_key, api_url=lago.url)
    seed_per_token_plan(client, {"sub_a": "cust_a", "sub_b": "cust_b"})
    return client


def event(transaction_id, tokens, subscription="sub_a", timestamp=IN_PERIOD):
    return Event(transaction_id=transaction_id, external_subscription_id=subscription, code="llm_tokens",
                 timestamp=f"{timestamp}.000", properties={"tokens": tokens, "model": "gpt-4o", "token_type": "input"})


def units(client, subscription="sub_a", customer="cust_a"):
    return float(client.customers.current_usage(customer, subscription).charges_usage[0].units)


def refused(call):
    with pytest.raises(LagoApiError) as error:
        call()
    return error.value.status_code, error.value.response["error_details"]


def test_postgres_validation_errors_come_before_duplicates_and_nothing_is_stored(start_lago):
    lago = start_lago(event_store="postgres")
    client = client_for(lago)
    client.events.batch_create(BatchEvent(events=[event("t1", 10)]))
    invalid = Event(transaction_id="", external_subscription_id="sub_a", code="llm_tokens", timestamp=f"{IN_PERIOD}")
    assert refused(lambda: client.events.batch_create(BatchEvent(events=[event("t1", 10), invalid]))) == (
        422, {"1": {"transaction_id": ["value_is_mandatory"]}})
    assert refused(lambda: client.events.batch_create(BatchEvent(events=[event("t2", 5), event("t1", 10)]))) == (
        422, {"1": {"transaction_id": ["value_already_exist"]}})
    assert lago.admin("stats")["events"] == 1 and units(client) == 10  # t2 was rolled back with its batch


def test_postgres_matches_a_batch_by_transaction_id_alone(start_lago):
    lago = start_lago(event_store="postgres")
    client = client_for(lago)
    # One id for two subscriptions is allowed in two requests, not in one batch: the second is "already there".
    assert refused(lambda: client.events.batch_create(BatchEvent(events=[event("t1", 1), event("t1", 2, "sub_b")]))) == (
        422, {"1": {"transaction_id": ["value_already_exist"]}})
    assert lago.admin("stats")["events"] == 0
    client.events.batch_create(BatchEvent(events=[event("t1", 1)]))
    client.events.batch_create(BatchEvent(events=[event("t1", 2, "sub_b")]))
    assert (units(client), units(client, "sub_b", "cust_b")) == (1, 2)
    assert refused(lambda: client.events.create(event("t1", 1))) == (422, {"transaction_id": ["value_already_exist"]})


def test_clickhouse_takes_copies_and_dedup_counts_one_per_timestamp(start_lago):
    lago = start_lago(event_store="clickhouse", clickhouse_dedup=True)
    client = client_for(lago)
    client.events.batch_create(BatchEvent(events=[event("t1", 10), event("t1", 10)]))  # 200: no duplicate error
    assert client.events.create(event("t1", 10)).transaction_id == "t1"
    assert lago.admin("stats")["events"] == 3 and units(client) == 10
    client.events.create(event("t1", 10, timestamp=IN_PERIOD + 1))  # another timestamp: another event to ClickHouse
    assert units(client) == 20


def test_clickhouse_without_dedup_counts_every_copy(start_lago):
    lago = start_lago(event_store="clickhouse", clickhouse_dedup=False)
    client = client_for(lago)
    client.events.batch_create(BatchEvent(events=[event("t1", 10), event("t1", 10)]))
    client.events.create(event("t1", 10))
    assert units(client) == 30


def test_clickhouse_does_not_validate_a_single_event_but_does_a_batch(start_lago):
    lago = start_lago(event_store="clickhouse")
    headers = {"Authorization": f"Bearer {lago.api_key}"}
    single = httpx.post(f"{lago.url}/api/v1/events", headers=headers,
                        json={"event": {"code": "llm_tokens", "external_subscription_id": "sub_a"}})
    assert single.status_code == 200 and single.json()["event"]["lago_id"] is None
    batch = httpx.post(f"{lago.url}/api/v1/events/batch", headers=headers,
                       json={"events": [{"code": "llm_tokens", "external_subscription_id": "sub_a"}]})
    assert batch.status_code == 422 and batch.json()["error_details"] == {"0": {"transaction_id": ["value_is_mandatory"]}}


@pytest.mark.parametrize("store", ["postgres", "clickhouse"])
def test_usage_shows_an_event_only_after_the_delay(start_lago, store):
    lago = start_lago(event_store=store, usage_delay_ms=800)
    client = client_for(lago)
    client.events.create(event("t1", 42))
    assert units(client) == 0
    time.sleep(0.9)
    assert units(client) == 42


@pytest.mark.parametrize("store", ["postgres", "clickhouse"])
def test_what_every_store_accepts(start_lago, store):
    lago = start_lago(event_store=store)
    client = client_for(lago)
    headers = {"Authorization": f"Bearer {lago.api_key}"}
    body = {"events": [
        {"transaction_id": "no-sub", "code": "llm_tokens", "timestamp": str(IN_PERIOD)},  # stored, never billed
        {"transaction_id": "exp", "external_subscription_id": "sub_a", "code": "llm_tokens", "timestamp": "1.7948e9",
         "properties": {"tokens": 7, "model": "gpt-4o", "token_type": "input"}},
        {"transaction_id": "listy", "external_subscription_id": "sub_a", "code": "llm_tokens",
         "timestamp": str(IN_PERIOD), "properties": ["not", "an", "object"]},
    ]}
    answer = httpx.post(f"{lago.url}/api/v1/events/batch", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    stored = {e["transaction_id"]: e for e in answer.json()["events"]}
    assert stored["exp"]["timestamp"] == "2026-11-16T03:33:20.000Z"  # BigDecimal("1.7948e9") seconds
    assert stored["listy"]["properties"] == {}
    assert stored["no-sub"]["external_subscription_id"] is None
    assert units(client) == 7
    iso = httpx.post(f"{lago.url}/api/v1/events", headers=headers, json={"event": {
        "transaction_id": "iso", "external_subscription_id": "sub_a", "code": "llm_tokens",
        "timestamp": "2026-11-15T12:00:00Z"}})
    assert iso.status_code == 422 and iso.json()["error_details"] == {"timestamp": ["invalid_format"]}


def test_a_failing_metric_expression_is_a_plain_string_per_index(start_lago):
    lago = start_lago()
    headers = {"Authorization": f"Bearer {lago.api_key}"}
    metric = {"name": "Seconds", "code": "seconds", "aggregation_type": "sum_agg", "field_name": "seconds",
              "expression": "round(event.properties.ms / 1000)"}
    assert httpx.post(f"{lago.url}/api/v1/billable_metrics", headers=headers,
                      json={"billable_metric": metric}).status_code == 200
    answer = httpx.post(f"{lago.url}/api/v1/events/batch", headers=headers, json={"events": [
        {"transaction_id": "ok", "external_subscription_id": "s", "code": "seconds", "properties": {"ms": 2400}},
        {"transaction_id": "bad", "external_subscription_id": "s", "code": "seconds", "properties": {"other": 1}}]})
    assert answer.status_code == 422
    assert answer.json()["error_details"] == {"1": "expression_evaluation_failed: Variable: ms not found"}
