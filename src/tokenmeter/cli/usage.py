"""`tokenmeter usage SUBSCRIPTION`: the ledger's totals for Lago's current period beside Lago's own."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tokenmeter.nats import encode_token
from tokenmeter.shipping.ledger import dead_lettered_ids, ledger_events, read_stream
from tokenmeter.shipping.reconcile import in_billing_period, lago_period, plain

from .environment import Environment


class UnknownSubscription(Exception):
    pass


async def usage_preview(env: Environment, js: Any, subscription_id: str) -> dict[str, Any]:
    subscription = await env.lago.subscription(subscription_id)
    if subscription is None or subscription.status != "active":
        raise UnknownSubscription(f"Lago has no active subscription {subscription_id!r}"
                                  + (f" (it is {subscription.status})" if subscription else ""))
    usage = await env.lago.current_usage(subscription.external_customer_id, subscription_id)
    period = lago_period(usage)
    since = datetime.fromtimestamp(period.start_ms / 1000, UTC) - timedelta(minutes=15)
    ledger = (await ledger_events(js, env.nats_settings.stream, env.nats_settings.subject_prefix, since,
                                  subscription_id)).get(subscription_id, {})
    never_billed = await dead_lettered_ids(js, env.sync.dead_letter_stream)
    names = env.metering.property_names
    rows: dict[tuple[str, str, str], dict[str, Decimal | None]] = defaultdict(lambda: {"ledger": Decimal(0),
                                                                                       "lago": None})
    for entry in in_billing_period(ledger.values(), period, never_billed):
        event = entry.event
        key = (event.code, str(event.properties.get(names["model"], "")), str(event.properties.get(names["token_type"], "")))
        rows[key]["ledger"] += Decimal(str(event.properties.get(names["tokens"], 0)))
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"ledger": Decimal(0), "lago": Decimal(0)})
    for (code, _, _), row in rows.items():
        totals[code]["ledger"] += row["ledger"]
    for charge in usage.charges_usage:
        code = charge.billable_metric.code
        totals[code]["lago"] += Decimal(charge.units)
        for row in charge.filters or []:
            values = row.values or {}
            model, token_type = values.get(names["model"], []), values.get(names["token_type"], [])
            if len(model) == 1 and len(token_type) == 1 and len(values) == 2:
                rows[(code, model[0], token_type[0])]["lago"] = Decimal(row.units)
    return {
        "external_subscription_id": subscription_id, "from_datetime": usage.from_datetime,
        "to_datetime": usage.to_datetime,
        "rows": [{"code": c, "model": m, "token_type": t, "ledger": plain(r["ledger"]),
                  "lago": None if r["lago"] is None else plain(r["lago"])}
                 for (c, m, t), r in sorted(rows.items()) if r["ledger"] or r["lago"]],
        "totals": [{"code": c, "ledger": plain(t["ledger"]), "lago": plain(t["lago"]),
                    "drift": plain(t["ledger"] - t["lago"])} for c, t in sorted(totals.items())],
        "unbillable": await unbillable(js, env, subscription_id),
    }


async def unbillable(js: Any, env: Environment, subscription_id: str) -> list[dict[str, Any]]:
    """Events of the subscription that Lago stores and will never bill, by reason: events and tokens."""
    stream = env.sync.unbillable_stream
    tokens = env.metering.property_names["tokens"]
    found: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for msg in await read_stream(js, stream, f"{stream.lower()}.{encode_token(subscription_id)}.*"):
        headers = msg.headers or {}
        transaction_id = headers.get("Tokenmeter-Transaction-Id", "")
        if transaction_id in seen:
            continue
        seen.add(transaction_id)
        row = found.setdefault(headers.get("Tokenmeter-Reason", "?"), {"events": 0, "tokens": Decimal(0)})
        row["events"] += 1
        with contextlib.suppress(ValueError, KeyError, TypeError, ArithmeticError):  # an event is counted all the same
            row["tokens"] += Decimal(str(orjson.loads(msg.data)["properties"][tokens]))
    return [{"reason": reason, "events": row["events"], "tokens": plain(row["tokens"])}
            for reason, row in sorted(found.items())]


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
    return "\n".join(lines)

