"""The usage-event contract, field by field: each rule refuses what it must and names the field."""

import time

import pytest

from tokenmeter.core import Contract, UsageEvent, parse_config

NOW = time.time()
DAY = 86_400


def contract(**config):
    return Contract.from_config(parse_config(config), max_age_seconds=62 * DAY)


def event(**changes):
    base = {"transaction_id": "t-1-input", "external_subscription_id": "sub_1", "code": "llm_tokens",
            "timestamp": f"{int(NOW) - 3600}.000", "properties": {"tokens": 812, "model": "gpt-4o", "token_type": "input"}}
    properties = {**base["properties"], **changes.pop("properties", {})}
    for name in changes.pop("without", ()):
        properties.pop(name)
    return UsageEvent.from_dict({**base, **changes, "properties": properties})


def test_an_event_that_keeps_the_contract_has_no_errors():
    assert contract().errors(event()) == {}


@pytest.mark.parametrize(("changes", "field"), [
    ({"properties": {"tokens": -1000}}, "properties.tokens"),  # subtracted from the bill by Lago's sum
    ({"properties": {"tokens": 1.5}}, "properties.tokens"),
    ({"properties": {"tokens": "812"}}, "properties.tokens"),
    ({"properties": {"tokens": True}}, "properties.tokens"),
    ({"properties": {"tokens": 10**9 + 1}}, "properties.tokens"),
    ({"without": ["tokens"]}, "properties.tokens"),
    ({"properties": {"token_type": "bonus"}}, "properties.token_type"),
    ({"without": ["token_type"]}, "properties.token_type"),
    ({"properties": {"model": ""}}, "properties.model"),
    ({"properties": {"model": 42}}, "properties.model"),
    ({"without": ["model"]}, "properties.model"),
    ({"properties": {"discount": 0.5}}, "properties.discount"),
    ({"code": "free_tokens"}, "code"),
    ({"timestamp": f"{int(NOW) + 3600}.000"}, "timestamp"),  # an hour ahead: past the 5-minute skew
    ({"timestamp": f"{int(NOW) - 63 * DAY}.000"}, "timestamp"),  # before the ledger keeps
])
def test_each_rule_names_its_field(changes, field):
    assert list(contract().errors(event(**changes))) == [field]


def test_what_the_metering_config_allows_is_allowed():
    allowing = contract(extra_metric_codes=["llm_requests"], extra_properties=["team"], max_tokens=5_000_000_000,
                        max_future_seconds=7200)
    assert allowing.errors(event(code="llm_requests", properties={"team": "ml", "tokens": 4_000_000_000},
                                 timestamp=f"{int(NOW) + 3600}.000")) == {}


def test_the_configured_property_names_are_the_ones_checked():
    renamed = contract(property_names={"tokens": "units", "model": "llm", "token_type": "kind"})
    good = UsageEvent("t", "s", "llm_tokens", f"{int(NOW)}.000", {"units": 1, "llm": "m", "kind": "output"})
    assert renamed.errors(good) == {}
    assert set(renamed.errors(event())) == {"properties.units", "properties.llm", "properties.kind",
                                            "properties.tokens", "properties.model", "properties.token_type"}


@pytest.mark.parametrize(("field", "value", "why"), [
    ("transaction_id", "t" * 257, "at most 256 characters"),
    ("external_subscription_id", "s" * 257, "at most 256 characters"),
    ("external_subscription_id", " sub_1", "no leading or trailing whitespace"),
    ("transaction_id", "t-1\r\nNats-Msg-Id: x", "no control characters"),
    ("code", "\udc80", "not valid Unicode"),
])
def test_the_envelope_refuses_identifiers_no_hop_can_carry(field, value, why):
    from tokenmeter.core import InvalidEventError

    with pytest.raises(InvalidEventError) as refused:
        event(**{field: value})
    assert why in refused.value.errors[field]


def test_a_remembered_valid_identifier_leaves_every_check_as_it_was():
    # Subscriptions, codes and models found valid are remembered for the Lambda environment: the same answers after,
    # an invalid one refused every time, and a value of any type answered without an error of its own.
    from tokenmeter.core.identifiers import identifier_problem, repeated_identifier_problem

    values = ["sub_1", "sub_1", " sub_1", "s" * 257, "s" * 257, "", None, 42, {"a": 1}, ["sub_1"], "llama3.1:8b"]
    assert [repeated_identifier_problem(v) for v in values] == [identifier_problem(v) for v in values]
    assert [repeated_identifier_problem(v) for v in values] == [identifier_problem(v) for v in values]
    assert repeated_identifier_problem("s" * 257) == "at most 256 characters, got 257"
