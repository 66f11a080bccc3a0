"""Billing objects, subscriptions and routes as lago-api checks them (plans_controller, charge_filter_value,
matching_and_ignored_service, subscriptions_controller#show, config/routes.rb, api_errors). Driven over
HTTP (and lago-python-client where its URLs allow); expected units worked out by hand."""

from urllib.parse import quote

import httpx
import pytest
from conftest import IN_PERIOD


class Api:
    def __init__(self, lago, key=None):
        self.http = httpx.Client(base_url=f"{lago.url}/api/v1", headers={"Authorization": f"Bearer {key or lago.api_key}"})

    def post(self, path, body):
        return self.http.post(path, json=body)

    def get(self, path, **params):
        return self.http.get(path, params=params)


def metric(api, **extra):
    body = {"name": "LLM tokens", "code": "llm_tokens", "aggregation_type": "sum_agg", "field_name": "tokens",
            "filters": [{"key": "model", "values": ["gpt-4o", "llama"]}, {"key": "token_type", "values": ["input", "output"]}],
            **extra}
    answer = api.post("/billable_metrics", {"billable_metric": body})
    assert answer.status_code == 200, answer.text
    return answer.json()["billable_metric"]


def plan(api, metric_id, filters, code="per_token", interval="monthly"):
    return api.post("/plans", {"plan": {"name": code, "code": code, "interval": interval, "amount_cents": 0,
                                        "amount_currency": "USD", "charges": [{
                                            "billable_metric_id": metric_id, "charge_model": "standard",
                                            "properties": {"amount": "1"}, "filters": filters}]}})


def segment(text):
    return quote(text, safe="").replace(".", "%2E")


def test_charges_take_a_metric_id_and_only_the_filters_it_defines(start_lago):
    api = Api(start_lago())
    lago_id = metric(api)["lago_id"]
    by_code = api.post("/plans", {"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0,
                                           "amount_currency": "USD", "charges": [{"billable_metric_code": "llm_tokens",
                                                                                  "charge_model": "standard"}]}})
    assert by_code.status_code == 404 and by_code.json()["code"] == "billable_metric_not_found"
    unknown_id = plan(api, "00000000-0000-4000-8000-000000000000", [])
    assert unknown_id.status_code == 404 and unknown_id.json()["code"] == "billable_metrics_not_found"
    unknown_key = plan(api, lago_id, [{"values": {"region": ["eu"]}, "properties": {"amount": "2"}}])
    assert unknown_key.status_code == 422
    assert unknown_key.json()["error_details"] == {"billable_metric_filter": ["relation_must_exist"],
                                                   "values": ["value_is_invalid"]}
    unknown_value = plan(api, lago_id, [{"values": {"model": ["gpt-5"]}, "properties": {"amount": "2"}}])
    assert unknown_value.status_code == 422 and unknown_value.json()["error_details"] == {"values": ["value_is_invalid"]}
    every_value = plan(api, lago_id, [{"values": {"model": ["__ALL_FILTER_VALUES__"]}, "properties": {"amount": "2"}}])
    assert every_value.status_code == 200, every_value.text


def test_the_most_specific_filter_wins_and_the_rest_is_the_default_bucket(start_lago):
    lago = start_lago()
    api = Api(lago)
    lago_id = metric(api)["lago_id"]
    assert plan(api, lago_id, [{"values": {"model": ["gpt-4o"]}, "properties": {"amount": "2"}},
                               {"values": {"model": ["gpt-4o"], "token_type": ["output"]}, "properties": {"amount": "3"}}]
                ).status_code == 200
    assert api.post("/subscriptions", {"subscription": {"external_customer_id": "acme", "plan_code": "per_token",
                                                        "external_id": "sub_1"}}).status_code == 200
    events = [("a", "gpt-4o", "input", 100), ("b", "gpt-4o", "output", 10), ("c", "llama", "output", 1)]
    api.post("/events/batch", {"events": [
        {"transaction_id": t, "external_subscription_id": "sub_1", "code": "llm_tokens", "timestamp": str(IN_PERIOD),
         "properties": {"tokens": n, "model": m, "token_type": k}} for t, m, k, n in events]})
    usage = api.get("/customers/acme/current_usage", external_subscription_id="sub_1").json()["customer_usage"]
    rows = [(f["values"], float(f["units"]), f["amount_cents"]) for f in usage["charges_usage"][0]["filters"]]
    # gpt-4o output matches both filters and counts once, in the narrower; llama matches none: default bucket.
    assert rows == [({"model": ["gpt-4o"]}, 100, 20000), ({"model": ["gpt-4o"], "token_type": ["output"]}, 10, 3000),
                    ({}, 1, 100)]
    assert float(usage["charges_usage"][0]["units"]) == 111 and usage["amount_cents"] == 23100


def test_subscription_status_decides_what_is_found_and_billed(start_lago):
    api = Api(start_lago())  # the clock: 2026-11-15T12:00Z
    metric(api)
    api.post("/plans", {"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0,
                                 "amount_currency": "USD"}})
    future = api.post("/subscriptions", {"subscription": {"external_customer_id": "acme", "plan_code": "p",
                                                          "external_id": "later", "subscription_at": "2026-12-01T00:00:00Z"}})
    assert future.json()["subscription"]["status"] == "pending" and future.json()["subscription"]["started_at"] is None
    assert api.get("/subscriptions/later").status_code == 404
    assert api.get("/subscriptions/later", status="pending").json()["subscription"]["status"] == "pending"
    no_usage = api.get("/customers/acme/current_usage", external_subscription_id="later")
    assert no_usage.status_code == 405 and no_usage.json() == {"status": 405, "error": "Method Not Allowed",
                                                               "code": "no_active_subscription"}
    api.post("/subscriptions", {"subscription": {"external_customer_id": "acme", "plan_code": "p", "external_id": "now",
                                                 "subscription_at": "2026-11-02T00:00:00Z"}})
    assert api.get("/customers/acme/current_usage", external_subscription_id="now").status_code == 200
    ended = api.http.delete("/subscriptions/now")
    assert ended.status_code == 200 and ended.json()["subscription"]["status"] == "terminated"
    assert api.get("/subscriptions/now").status_code == 404
    assert api.get("/subscriptions/now", status="terminated").json()["subscription"]["terminated_at"] is not None
    assert api.get("/customers/acme/current_usage", external_subscription_id="now").status_code == 405


@pytest.mark.parametrize("subscription", ["acme/eu west", "team.alpha", "what?now", "hash#tag", "50%off", "ünï-客户"])
def test_ids_reach_their_routes_only_percent_encoded(start_lago, subscription):
    api = Api(start_lago())
    metric(api)
    api.post("/plans", {"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0,
                                 "amount_currency": "USD"}})
    customer = f"cust.{subscription}"
    created = api.post("/subscriptions", {"subscription": {"external_customer_id": customer, "plan_code": "p",
                                                           "external_id": subscription}})
    assert created.status_code == 200, created.text
    assert api.get(f"/subscriptions/{segment(subscription)}").json()["subscription"]["external_id"] == subscription
    usage = api.get(f"/customers/{segment(customer)}/current_usage", external_subscription_id=subscription)
    assert usage.status_code == 200, usage.text
    # Rails' default segment stops at '.': the raw customer id finds no route at all.
    raw = api.http.get(f"/customers/{quote(customer, safe='.')}/current_usage", params={"external_subscription_id": subscription})
    assert raw.status_code == 404 and raw.json()["code"] == "resource_not_found"


def test_error_shapes_and_permissions(start_lago):
    lago = start_lago(extra=["--api-key-permissions", '{"usage-only": {"customer_usage": ["read"]}}'])
    api, restricted = Api(lago), Api(lago, key="usage-only")
    missing = api.post("/events", {"not_event": {}})
    assert missing.status_code == 400 and missing.json() == {
        "status": 400, "error": "BadRequest: param is missing or the value is empty: event"}
    forbidden = restricted.post("/events", {"event": {"transaction_id": "t", "code": "c"}})
    assert forbidden.status_code == 403 and forbidden.json() == {"status": 403, "error": "Forbidden",
                                                                 "code": "write_action_not_allowed_for_event"}
    assert Api(lago, key="nobody").get("/events/t").status_code == 401
    nowhere = api.get("/no_such_resource")
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "resource_not_found"


def test_lists_find_what_was_created(start_lago):
    from lago_python_client.client import Client

    lago = start_lago()
    api = Api(lago)
    metric(api)
    api.post("/plans", {"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0,
                                 "amount_currency": "USD"}})
    for external_id, at in (("now", "2026-11-01T00:00:00Z"), ("later", "2026-12-01T00:00:00Z")):
        api.post("/subscriptions", {"subscription": {"external_customer_id": "acme", "plan_code": "p",
                                                     "external_id": external_id, "subscription_at": at}})
    client = Client(api_key=lago.api_key, api_url=lago.url)
    found = client.subscriptions.find_all({"external_customer_id": "acme"})  # the client answers a dict of models
    assert [s.external_id for s in found["subscriptions"]] == ["now"] and found["meta"]["total_count"] == 1
    every = api.http.get("/subscriptions", params=[("status[]", "active"), ("status[]", "pending")]).json()
    assert [s["external_id"] for s in every["subscriptions"]] == ["later", "now"] and every["meta"]["total_count"] == 2
    assert [m.code for m in client.billable_metrics.find_all()["billable_metrics"]] == ["llm_tokens"]
    assert [p.code for p in client.plans.find_all()["plans"]] == ["p"]
