"""`tokenmeter usage SUBSCRIPTION`: the running totals for Lago's current period beside Lago's own."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from tokenmeter.shipping.period_totals import days_touching
from tokenmeter.shipping.reconcile import lago_period, plain
from tokenmeter.shipping.totals import SLICE_MS, SubscriptionTotals, day_start_ms, split_key

from .environment import Environment
from .totals import current_totals


class UnknownSubscription(Exception):
    pass


async def usage_preview(env: Environment, js: Any, subscription_id: str, catch_up: bool = True) -> dict[str, Any]:
    subscription = await env.lago.subscription(subscription_id)
    if subscription is None or subscription.status != "active":
        raise UnknownSubscription(f"Lago has no active subscription {subscription_id!r}"
                                  + (f" (it is {subscription.status})" if subscription else ""))
    usage = await env.lago.current_usage(subscription.external_customer_id, subscription_id)
    period = lago_period(usage)
    totals = await current_totals(env, js, catch_up)
    names = env.metering.property_names
    rows: dict[tuple[str, str, str], dict[str, Decimal | None]] = defaultdict(lambda: {"ledger": Decimal(0),
                                                                                       "lago": None})
    sub = SubscriptionTotals(subscription_id)
    if totals.store is not None:
        sub, _ = await totals.store.subscription(subscription_id)
        for day, doc in (await totals.store.days(subscription_id, days_touching(period))).items():
            for index, part in doc.slices.items():
                if period.touches(day_start_ms(day) + index * SLICE_MS, SLICE_MS):
                    for key, (units, _) in part.by_key.items():
                        rows[split_key(key)]["ledger"] += Decimal(str(units))
    codes: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"ledger": Decimal(0), "lago": Decimal(0)})
    for (code, _, _), row in rows.items():
        codes[code]["ledger"] += row["ledger"]
    for charge in usage.charges_usage:
        codes[charge.code]["lago"] += charge.units
        for row in charge.filters:
            model, token_type = row.values.get(names["model"], []), row.values.get(names["token_type"], [])
            if len(model) == 1 and len(token_type) == 1 and len(row.values) == 2:
                rows[(charge.code, model[0], token_type[0])]["lago"] = row.units
    return {
        "external_subscription_id": subscription_id, "from_datetime": usage.from_datetime,
        "to_datetime": usage.to_datetime, "totals_state": totals.as_dict(),
        "rows": [{"code": c, "model": m, "token_type": t, "ledger": plain(r["ledger"]),
                  "lago": None if r["lago"] is None else plain(r["lago"])}
                 for (c, m, t), r in sorted(rows.items()) if r["ledger"] or r["lago"]],
        "totals": [{"code": c, "ledger": plain(t["ledger"]), "lago": plain(t["lago"]),
                    "drift": plain(t["ledger"] - t["lago"])} for c, t in sorted(codes.items())],
        "unbillable": [{"reason": reason, "events": events, "tokens": plain(Decimal(str(units)))}
                       for reason, (units, events) in sorted(sub.unbillable.items())],
    }


def render(preview: dict[str, Any]) -> str:
    lines = [f"{preview['external_subscription_id']}: {preview['from_datetime']} .. {preview['to_datetime']}",
             f"  {'code':14} {'model':42} {'token type':13} {'ledger':>14} {'lago':>14}"]
    for row in preview["rows"]:
        lago = "-" if row["lago"] is None else f"{Decimal(row['lago']):,}"
        lines.append(f"  {row['code']:14} {row['model']:42} {row['token_type']:13} {Decimal(row['ledger']):>14,} "
                     f"{lago:>14}")
    for total in preview["totals"]:
        lines.append(f"  {total['code']:14} {'total':56} {Decimal(total['ledger']):>14,} {Decimal(total['lago']):>14,}"
                     f"  drift {total['drift']}")
    lines.append("  unbillable (stored by Lago, never billed): " + (", ".join(
        f"{u['reason']} {u['events']:,} events / {Decimal(u['tokens']):,} tokens" for u in preview["unbillable"]) or "none"))
    if preview["totals_state"]["behind"]:
        lines.append(f"  the totals do not count the ledger's newest {preview['totals_state']['behind']:,} messages yet")
    return "\n".join(lines)
