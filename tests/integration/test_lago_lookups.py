"""lago_sync's subscription lookups: a batch touching many subscriptions reads Lago's list of active ones
(100 a page) instead of one read apiece (Lago Cloud allows 50 reads a second), with the same answers as
the lookups one by one; what the list lacks, and a failing list, fall back to those."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import seed_per_token_plan

from tokenmeter.shipping import lago_api
from tokenmeter.shipping.lago_api import LagoApi

ACTIVE = {f"sub_{i:02d}": f"cus_{i:02d}" for i in range(30)}


def requests(lago) -> int:
    return lago.admin("stats")["requests"]


def look_up(lago, ids: list[str], prefetch: bool) -> tuple[dict, int]:
    """Each id's subscription as lago_sync sees it, and how many API requests that took."""
    async def go():
        api = LagoApi(lago.url, lago.api_key, read_rate_per_second=10_000)
        try:
            if prefetch:
                await api.look_up_subscriptions(set(ids))
            return {i: await api.subscription(i) for i in ids}
        finally:
            await api.close()

    before = requests(lago)
    found = asyncio.run(go())
    return found, requests(lago) - before


@pytest.fixture
def seeded(lago, lago_client):
    seed_per_token_plan(lago_client, {**ACTIVE, "sub_ended": "cus_ended"})
    lago_client.subscriptions.destroy("sub_ended")
    return lago


def test_many_subscriptions_cost_one_list_page_and_read_the_same(seeded):
    ids = [*ACTIVE, "sub_ended", "sub_nobody"]
    one_by_one, singles = look_up(seeded, ids, prefetch=False)
    listed, with_list = look_up(seeded, ids, prefetch=True)
    assert listed == one_by_one
    assert all(listed[i].status == "active" and listed[i].external_customer_id == c for i, c in ACTIVE.items())
    assert listed["sub_ended"].status == "terminated" and listed["sub_nobody"] is None
    # One by one: 30 active (1 each), the terminated one (active 404, then found: 2), the unknown (4 statuses).
    assert singles == 30 + 2 + 4
    # With the list: one page for the 30 active, then the same two lookups one by one.
    assert with_list == 1 + 2 + 4


def test_a_few_subscriptions_are_looked_up_one_by_one(seeded):
    ids = list(ACTIVE)[:lago_api._LIST_FROM - 1]
    found, used = look_up(seeded, ids, prefetch=True)
    assert used == len(ids) and all(found[i] is not None for i in ids)


def test_a_list_much_longer_than_the_batch_stops_after_its_first_page(seeded, monkeypatch):
    monkeypatch.setattr(lago_api, "_LIST_PAGE", 5)  # 30 active subscriptions: 6 pages, for 10 wanted
    ids = list(ACTIVE)[-10:]
    before = requests(seeded)
    page = httpx.get(f"{seeded.url}/api/v1/subscriptions", params={"page": 1, "per_page": 5},
                     headers={"Authorization": f"Bearer {seeded.api_key}"}).json()
    assert page["meta"]["total_pages"] == 6
    listed_first = {s["external_id"] for s in page["subscriptions"]} & set(ids)
    assert requests(seeded) == before + 1
    found, used = look_up(seeded, ids, prefetch=True)
    assert all(found[i] is not None for i in ids)
    assert used == 1 + len(ids) - len(listed_first)


def test_a_failing_list_falls_back_to_lookups(seeded):
    seeded.admin("faults", {"rate_limit_next": 1})
    found, used = look_up(seeded, list(ACTIVE), prefetch=True)
    assert all(found[i].external_customer_id == c for i, c in ACTIVE.items())
    assert used == 1 + len(ACTIVE)
