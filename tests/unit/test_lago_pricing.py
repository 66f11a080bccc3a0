"""The emulator's charge models, priced by hand."""

from decimal import Decimal

import pytest

from local.lago_emulator.usage import aggregate, amount_cents

GRADUATED = {"graduated_ranges": [
    {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "1"},
    {"from_value": 101, "to_value": None, "per_unit_amount": "0.05", "flat_amount": "0"},
]}


@pytest.mark.parametrize(
    ("model", "properties", "units", "cents"),
    [
        ("standard", {"amount": "0.00002"}, 812_000, 1624),  # 812,000 x $0.00002 = $16.24
        ("standard", {"amount": "0.00001"}, 150, 0),  # $0.0015 rounds to 0 cents
        ("graduated", GRADUATED, 50, 600),  # 50 x 0.10 + 1 flat = $6.00
        ("graduated", GRADUATED, 150, 1350),  # 100 x 0.10 + 1 + 50 x 0.05 = $13.50
        ("package", {"amount": "2", "package_size": 1000, "free_units": 100}, 100, 0),
        ("package", {"amount": "2", "package_size": 1000, "free_units": 100}, 1101, 400),  # 1001 over: 2 packages
    ],
)
def test_charge_models(model, properties, units, cents):
    assert amount_cents(model, properties, Decimal(units)) == cents


def test_aggregations():
    events = [{"properties": {"tokens": n, "user": u}} for n, u in ((3, "a"), (7, "b"), (5, "a"))]
    assert aggregate({"aggregation_type": "sum_agg", "field_name": "tokens"}, events) == 15
    assert aggregate({"aggregation_type": "max_agg", "field_name": "tokens"}, events) == 7
    assert aggregate({"aggregation_type": "count_agg"}, events) == 3
    assert aggregate({"aggregation_type": "unique_count_agg", "field_name": "user"}, events) == 2
