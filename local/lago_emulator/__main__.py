"""``python -m local.lago_emulator --port N --api-key KEY --db PATH [--seed FILE]``"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

from .server import Emulator, Faults, make_server
from .store import Store


def seed(emulator: Emulator, path: Path) -> None:
    """Create what a seed file lists, through the same routes lago-python-client uses (idempotent)."""
    document = json.loads(path.read_text())
    for kind, key, route in (("billable_metric", "code", "billable_metrics"), ("plan", "code", "plans"),
                             ("customer", "external_id", "customers"), ("subscription", "external_id", "subscriptions")):
        for item in document.get(f"{kind}s", []):
            if kind in ("customer",) or emulator.store.get(kind, item.get(key, "")) is None:
                emulator.route("POST", f"/api/v1/{route}", {}, {kind: item})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.lago_emulator", description="Lago emulator for tokenmeter")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--db", required=True, help="SQLite file; kept across restarts")
    parser.add_argument("--seed", type=Path, help="JSON with billable_metrics, plans, customers, subscriptions")
    parser.add_argument("--now", help="fixed clock for billing periods (ISO 8601), for deterministic usage")
    for name, kind in (("error-rate", float), ("rate-limit-next", int), ("rate-limit-reset", int), ("latency-ms", int),
                       ("drop-rate", float), ("drop-after-store-rate", float), ("fault-seed", int)):
        parser.add_argument(f"--{name}", type=kind)
    args = parser.parse_args(argv)
    faults = Faults(**{field: value for field, value in (
        ("error_rate", args.error_rate), ("rate_limit_next", args.rate_limit_next), ("rate_limit_reset", args.rate_limit_reset),
        ("latency_ms", args.latency_ms), ("drop_rate", args.drop_rate), ("drop_after_store_rate", args.drop_after_store_rate),
        ("seed", args.fault_seed)) if value is not None})
    clock = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else None
    emulator = Emulator(Store(args.db), args.api_key, faults, clock)
    if args.seed:
        seed(emulator, args.seed)
    server = make_server(args.host, args.port, emulator)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"lago emulator listening on http://{args.host}:{args.port}", flush=True)
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
