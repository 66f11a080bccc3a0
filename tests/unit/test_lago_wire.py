"""tokenmeter's Lago wire format against lago-python-client's, call by call (the client is the second
implementation): the URLs, the headers Lago reads, the errors, and the answers' fields we use."""

from decimal import Decimal

import httpx
import pytest
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError as ClientApiError
from lago_python_client.exceptions import LagoRateLimitError as ClientRateLimitError
from lago_python_client.models.customer_usage import CustomerUsageResponse
from lago_python_client.models.subscription import SubscriptionResponse
from lago_python_client.services.request import make_headers, make_url
from lago_python_client.services.response import verify_response

from tokenmeter.shipping import lago_wire as wire
from tokenmeter.shipping.lago_api import LagoSubscription


@pytest.mark.parametrize("api_url", ["http://lago:3000", "http://lago:3000/", "https://lago.example.com/billing/",
                                     "https://api.getlago.com", None])
def test_urls_are_the_clients(api_url):
    base = wire.api_base(api_url)
    assert base == Client(api_key="k", api_url=api_url).base_api_url
    for parts, query in ((("events", "batch"), None), (("subscriptions", "sub%2E1"), {"status": "terminated"}),
                         (("customers", "c%2F1", "current_usage"), {"external_subscription_id": "a b&c"}),
                         (("events",), {"code": "tokens", "page": 2, "timestamp_from": "2026-01-01T00:00:00.000Z"})):
        assert wire.url(base, *parts, query=query) == make_url(origin=base, path_parts=parts, query_pairs=query)
    assert wire.api_base("http://lago:3000") == "http://lago:3000/api/v1/"


def test_headers_lago_reads_are_the_clients():
    ours, theirs = wire.headers("key-1"), make_headers(api_key="key-1")
    assert ours["Authorization"] == theirs["Authorization"] == "Bearer key-1"
    assert ours["Content-type"] == theirs["Content-type"] == "application/json"


def _response(status, body=None, headers=None, content=None):
    request = httpx.Request("POST", "http://lago:3000/api/v1/events/batch")
    if content is not None:
        return httpx.Response(status, content=content, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def _check(response):
    wire.check(response.status_code, str(response.request.url), response.headers, response.content)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_statuses_pass_as_in_the_client(status):
    response = _response(status, {"ok": True})
    verify_response(response)
    _check(response)


@pytest.mark.parametrize("status, body", [
    (422, {"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
           "error_details": {"0": {"transaction_id": ["value_already_exist"]}}}),
    (404, {"status": 404, "error": "Not Found", "code": "subscription_not_found"}),
    (401, {"status": 401, "error": "Unauthorized"}),
    (500, {"status": 500, "error": "Internal Server Error"}),
])
def test_errors_carry_what_the_clients_carry(status, body):
    response = _response(status, body)
    with pytest.raises(ClientApiError) as theirs:
        verify_response(response)
    with pytest.raises(wire.LagoApiError) as ours:
        _check(response)
    assert (ours.value.status_code, ours.value.response, ours.value.url) == \
        (theirs.value.status_code, theirs.value.response, theirs.value.url) == (status, body, str(response.request.url))


def test_rate_limit_reads_lagos_headers_as_the_client_does():
    response = _response(429, {"status": 429, "error": "Too Many Requests"},
                         {"x-ratelimit-limit": "200", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"})
    with pytest.raises(ClientRateLimitError) as theirs:
        verify_response(response)
    with pytest.raises(wire.LagoRateLimitError) as ours:
        _check(response)
    assert (ours.value.limit, ours.value.remaining, ours.value.reset) == \
        (theirs.value.limit, theirs.value.remaining, theirs.value.reset) == (200, 0, 7)
    assert ours.value.status_code == 429


def test_an_error_page_that_is_not_json_keeps_its_status():
    # The client reports such a page (a proxy's 502) as a 500; the status is what tells "try again".
    with pytest.raises(wire.LagoApiError) as error:
        _check(_response(502, content=b"<html>Bad Gateway</html>"))
    assert error.value.status_code == 502 and error.value.response is None


# A current_usage answer shaped as Lago's serializer writes it (app/serializers/v1/customers/usage_serializer.rb):
# one metric with two charges (one filtered), numbers as decimal strings.
USAGE = {"customer_usage": {
    "from_datetime": "2026-11-01T00:00:00Z", "to_datetime": "2026-11-30T23:59:59Z",
    "issuing_date": "2026-12-01", "lago_invoice_id": None, "currency": "USD", "amount_cents": 1234,
    "total_amount_cents": 1234, "taxes_amount_cents": 0,
    "charges_usage": [
        {"units": "1500.0", "total_aggregated_units": "1500.0", "events_count": 3, "amount_cents": 1000,
         "amount_currency": "USD", "charge": {"lago_id": "c1", "charge_model": "standard", "invoice_display_name": None},
         "billable_metric": {"lago_id": "m1", "name": "Tokens", "code": "llm_tokens", "aggregation_type": "sum_agg"},
         "filters": [
             {"invoice_display_name": None, "values": {"model": ["gpt-4o"], "token_type": ["input"]},
              "units": "1000.0", "total_aggregated_units": "1000.0", "amount_cents": 800, "events_count": 2},
             {"invoice_display_name": None, "values": {"model": ["gpt-4o"], "token_type": ["output"]},
              "units": "500.0", "total_aggregated_units": "500.0", "amount_cents": 200, "events_count": 1}],
         "grouped_usage": []},
        {"units": "0.5", "total_aggregated_units": "0.5", "events_count": 1, "amount_cents": 234,
         "amount_currency": "USD", "charge": {"lago_id": "c2", "charge_model": "package", "invoice_display_name": None},
         "billable_metric": {"lago_id": "m2", "name": "GPU hours", "code": "gpu_hours", "aggregation_type": "sum_agg"},
         "filters": [], "grouped_usage": []}]}}


def test_current_usage_reads_the_fields_the_clients_model_has():
    theirs = CustomerUsageResponse.parse_obj(USAGE["customer_usage"])
    response = _response(200, USAGE)
    ours = wire.CurrentUsage.from_json(wire.resource(200, "u", response.headers, response.content, "customer_usage"))
    assert (ours.from_datetime, ours.to_datetime) == (theirs.from_datetime, theirs.to_datetime)
    assert [(c.code, c.units) for c in ours.charges_usage] == \
        [(c.billable_metric.code, Decimal(c.units)) for c in theirs.charges_usage] == \
        [("llm_tokens", Decimal(1500)), ("gpu_hours", Decimal("0.5"))]
    assert [(f.values, f.units) for f in ours.charges_usage[0].filters] == \
        [(f.values, Decimal(f.units)) for f in theirs.charges_usage[0].filters]


@pytest.mark.parametrize("broken", [
    {"from_datetime": "2026-11-01T00:00:00Z"},  # no to_datetime
    {**USAGE["customer_usage"], "charges_usage": [{"units": "1"}]},  # no billable_metric
    {**USAGE["customer_usage"], "charges_usage": [{**USAGE["customer_usage"]["charges_usage"][1], "units": "many"}]},
    {**USAGE["customer_usage"], "charges_usage": "none"},
])
def test_an_unreadable_current_usage_is_an_api_error_not_a_crash(broken):
    with pytest.raises(wire.LagoApiError) as error:
        wire.CurrentUsage.from_json(broken)
    assert error.value.status_code == 500


@pytest.mark.parametrize("content", [b"", b"[]", b'{"customer": {}}', b'{"subscription": "x"}', b"not json"])
def test_an_answer_without_the_object_is_an_api_error(content):
    with pytest.raises(wire.LagoApiError) as error:
        wire.resource(200, "http://lago/api/v1/subscriptions/s", {}, content, "subscription")
    assert error.value.status_code == 500


SUBSCRIPTION = {"lago_id": "s-1", "external_id": "sub_1", "lago_customer_id": "c-1", "external_customer_id": "cus_1",
                "name": None, "plan_code": "tokens", "status": "terminated", "billing_time": "calendar",
                "subscription_at": "2026-11-01T00:00:00Z", "started_at": "2026-11-01T00:00:00Z",
                "trial_ended_at": None, "ending_at": None, "terminated_at": "2026-11-20T10:00:00.250Z",
                "canceled_at": None, "created_at": "2026-11-01T00:00:00Z", "previous_plan_code": None,
                "next_plan_code": None, "downgrade_plan_date": None,
                "current_billing_period_started_at": "2026-11-01T00:00:00Z",
                "current_billing_period_ending_at": "2026-11-30T23:59:59Z"}


def test_subscription_reads_as_from_the_clients_model():
    theirs = SubscriptionResponse.parse_obj(SUBSCRIPTION)
    ours = LagoSubscription.from_json(SUBSCRIPTION)
    assert (ours.external_id, ours.external_customer_id, ours.status) == \
        (theirs.external_id, theirs.external_customer_id, theirs.status) == ("sub_1", "cus_1", "terminated")
    # Hand-worked: 2026-11-01 is 1,793,491,200 s after the epoch; the 20th 10:00:00.250 is 19 days 10 h later.
    assert ours.started_ms == 1_793_491_200_000
    assert ours.ended_ms == 1_793_491_200_000 + (19 * 86_400 + 10 * 3_600) * 1000 + 250
    assert ours.period_end_ms == 1_793_491_200_000 + 30 * 86_400_000 - 1  # 23:59:59 runs to its last millisecond


def test_a_subscription_with_an_unreadable_time_is_an_api_error():
    with pytest.raises(wire.LagoApiError):
        LagoSubscription.from_json({**SUBSCRIPTION, "started_at": "last tuesday"})
