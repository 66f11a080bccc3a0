"""``python -m local.lago_emulator --port N --api-key KEY --db PATH [--event-store clickhouse] [--seed FILE]``"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

from .api import Emulator, EmulatorSettings
from .errors import ApiError
from .server import Faults, make_server
from .store import EVENT_STORES, Store
from .usage import UsageSettings


def seed(emulator: Emulator, path: Path) -> None:
    """Create what a seed file lists through the API's own routes, as a user would with a client.

    A seed names a charge's metric by ``billable_metric_code`` because ids are only known once the
    metric exists; like a client, the seeder looks the id up and sends ``billable_metric_id``, the
    only key Lago takes. Objects that already exist are left as they are (a restart re-seeds).
    """
    document = json.loads(path.read_text())
    ids = {m["code"]: m["lago_id"] for m in emulator.store.all("billable_metric")}
    for kind, route in (("billable_metric", "billable_metrics"), ("plan", "plans"), ("customer", "customers"),
                        ("subscription", "subscriptions")):
        for item in document.get(f"{kind}s", []):
            if kind == "plan":
                item = {**item, "charges": [_by_id(charge, ids) for charge in item.get("charges", [])]}
            try:
                _, created = emulator.handle("POST", f"/api/v1/{route}", {}, _any_key(emulator), {kind: item})
            except ApiError as error:
                if "value_already_exist" not in json.dumps(error.body):
                    raise SystemExit(f"seed {path}: {kind} {item.get('code') or item.get('external_id')}: {error.body}") from None
                continue
            if kind == "billable_metric":
                ids[created[kind]["code"]] = created[kind]["lago_id"]


def _by_id(charge: dict, ids: dict[str, str]) -> dict:
    if "billable_metric_code" not in charge:
        return charge
    rest = {k: v for k, v in charge.items() if k != "billable_metric_code"}
    return {**rest, "billable_metric_id": ids.get(charge["billable_metric_code"], charge["billable_metric_code"])}


def _any_key(emulator: Emulator) -> str:
    full = [key for key, permissions in emulator.settings.api_keys.items() if permissions is None]
    return f"Bearer {full[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.lago_emulator", description="Lago emulator for tokenmeter")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", required=True, help="an API key with every permission")
    parser.add_argument("--api-key-permissions", type=json.loads, default={},
                        help='more keys and what each may do, e.g. {"KEY": {"event": ["write"]}}')
    parser.add_argument("--db", required=True, help="SQLite file; kept across restarts")
    parser.add_argument("--event-store", choices=EVENT_STORES, default="postgres",
                        help="postgres (self-hosted default) or clickhouse (Lago Cloud, events processor)")
    parser.add_argument("--clickhouse-dedup", choices=("on", "off"), default="on",
                        help="the organization's clickhouse_deduplication_enabled (read-time dedup)")
    parser.add_argument("--usage-delay-ms", type=int, default=0,
                        help="usage (and, on ClickHouse, the event list) shows an event this long after accepting it")
    parser.add_argument("--seed", type=Path, help="JSON with billable_metrics, plans, customers, subscriptions")
    parser.add_argument("--now", help="fixed clock for billing periods and subscription status (ISO 8601)")
    for name, kind in (("error-rate", float), ("rate-limit-next", int), ("rate-limit-reset", int), ("latency-ms", int),
                       ("drop-rate", float), ("drop-after-store-rate", float), ("fault-seed", int)):
        parser.add_argument(f"--{name}", type=kind)
    args = parser.parse_args(argv)
    faults = Faults(**{field: value for field, value in (
        ("error_rate", args.error_rate), ("rate_limit_next", args.rate_limit_next), ("rate_limit_reset", args.rate_limit_reset),
        ("latency_ms", args.latency_ms), ("drop_rate", args.drop_rate), ("drop_after_store_rate", args.drop_after_store_rate),
        ("seed", args.fault_seed)) if value is not None})
    clock = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else None
    settings = EmulatorSettings(api_keys={**args.api_key_permissions, args.api_key: None}, clock=clock,
                                usage=UsageSettings(args.usage_delay_ms, args.clickhouse_dedup == "on"))
    try:
        store = Store(args.db, args.event_store)
    except ValueError as exc:
        parser.error(str(exc))
    emulator = Emulator(store, settings)
    if args.seed:
        seed(emulator, args.seed)
    server = make_server(args.host, args.port, emulator, faults)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"lago emulator ({args.event_store} event store) listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        emulator.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
