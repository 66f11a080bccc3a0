"""The usage-event contract, field by field: each rule refuses what it must and names the field."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(("timestamp", "kept"), [
    # now = 1,800,000,000.5 s; the ledger keeps 62 days (5,356,800 s), the skew is 300 s: kept from
    # 1,794,643,200.500 to 1,800,000,300.500, both ends included, to the millisecond (digits past it dropped).
    ("1794643200.500", True), ("1794643200.499", False), ("1794643200.5009", True), ("1794643200.4999", False),
    ("1800000300.500", True), ("1800000300.501", False), ("1800000300.5009", True), ("1800000300", True),
    ("1794643201", True), ("1794643200", False), ("1794643200.5", True), ("1794643200.49", False),
])
def test_a_timestamp_is_kept_to_the_millisecond_at_both_ends(timestamp, kept):
    errors = contract().errors(event(timestamp=timestamp), now=1_800_000_000.5)
    assert (errors == {}) is kept and set(errors) <= {"timestamp"}


@pytest.mark.parametrize(("timestamp", "kept"), [("1794643200.5009", False), ("1794643200.501", True),
                                                 ("1800000300.5009", True), ("1800000300.501", False)])
def test_digits_past_the_millisecond_are_dropped_before_the_timestamp_is_judged(timestamp, kept):
    # now = 1,800,000,000.5005 s: kept from 1,794,643,200.5005 to 1,800,000,300.5005; .5009 is read as .500.
    errors = contract().errors(event(timestamp=timestamp), now=1_800_000_000.5005)
    assert (errors == {}) is kept and set(errors) <= {"timestamp"}


_texts = st.sampled_from(["llm_tokens", "input", "output", "reasoning", "gpt-4o", "tokens", "model", "token_type", "",
                          " x", "free_tokens", "team"]) | st.text(max_size=4)
_values = st.one_of(_texts, st.integers(-2, 10**9 + 2), st.booleans(), st.floats(allow_nan=False), st.none(),
                    st.lists(st.integers(), max_size=2), st.dictionaries(_texts, st.integers(), max_size=1))
_timestamps = st.builds(lambda at, decimals: f"{at:.{decimals}f}", st.floats(1_794_643_199, 1_800_000_302), st.integers(0, 5))


def _kept_or(valid, other):
    """Mostly the valid value; else another, or none at all (None: the field is left out)."""
    return st.integers(0, 19).flatmap(lambda n: st.just(valid) if n < 17 else other | st.none())


_properties = st.builds(lambda fields, extra: {**{k: v for k, v in fields.items() if v is not None}, **extra},
                        st.fixed_dictionaries({"tokens": _kept_or(812, _values), "model": _kept_or("gpt-4o", _values),
                                               "token_type": _kept_or("output", _values)}),
                        _kept_or({}, st.dictionaries(_texts, _values, max_size=1)).map(lambda extra: extra or {}))
_events = st.builds(lambda fields: {k: v for k, v in fields.items() if v is not None}, st.fixed_dictionaries({
    "transaction_id": _kept_or("t-9-output", _texts), "external_subscription_id": _kept_or("sub_1", _texts),
    "code": _kept_or("llm_tokens", _texts), "timestamp": _kept_or("1799999000.123", _timestamps | _values),
    "properties": _kept_or(None, _values).flatmap(lambda other: _properties if other is None else st.just(other))}))


@settings(max_examples=600, deadline=None)
@given(_events)
def test_any_event_is_judged_as_the_rules_one_by_one_judge_it(data):
    # from_dict and errors check the usual event in one pass; the rules one by one (the second implementation,
    # which also names each field) must find nothing exactly where that pass lets an event through.
    from tokenmeter.core import InvalidEventError
    from tokenmeter.core.events import _envelope_errors

    try:
        checked = UsageEvent.from_dict(data)
    except InvalidEventError as refused:
        assert refused.errors == _envelope_errors(data) != {}
        return
    assert _envelope_errors(data) == {}
    rules = contract(extra_properties=["team"])
    assert rules.errors(checked, now=1_800_000_000.5) == rules._found(checked, now=1_800_000_000.5)
