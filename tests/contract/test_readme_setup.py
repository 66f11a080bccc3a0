"""The README's Lago set-up, run as written against the emulator: Lago's rules accept it (charges by
metric id, filters only with the metric's own keys and values), and it prices as the README says."""

import re

from conftest import IN_PERIOD, ROOT
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


def readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(re.escape(after) + r".*?```python\n(.*?)```", text, re.S).group(1)


def test_the_readme_lago_setup_is_accepted(lago_client):
    code = readme_block("The Lago side, with lago-python-client")
    exec(code, {"client": lago_client, "BillableMetric": BillableMetric, "BillableMetricFilter": BillableMetricFilter,
                "Plan": Plan, "Charge": Charge, "ChargeFilter": ChargeFilter})
    lago_client.subscriptions.create(Subscription(external_customer_id="acme", plan_code="per_token",
                                                  external_id="sub_acme", subscription_at="2026-01-01T00:00:00Z"))
    lago_client.customers.create(Customer(external_id="acme", currency="USD"))
    lago_client.events.batch_create(BatchEvent(events=[
        Event(transaction_id=f"t-{kind}", external_subscription_id="sub_acme", code="llm_tokens",
              timestamp=f"{IN_PERIOD}.000", properties={"tokens": 1_000_000, "model": "gpt-4o", "token_type": kind})
        for kind in ("input", "output", "cached_input")]))
    usage = lago_client.customers.current_usage("acme", "sub_acme")
    # A million tokens each: output $10, input $2.50, cached input at the default $0.10.
    assert usage.amount_cents == 1000 + 250 + 10
