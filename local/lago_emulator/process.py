"""Run the emulator as its own process on a free port (tests, benchmarks, the demo)."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from local.processes import LocalServer

ROOT = Path(__file__).resolve().parent.parent.parent


class LagoEmulatorProcess(LocalServer):
    """``python -m local.lago_emulator`` with its SQLite file in ``folder``; restartable."""

    name = "lago emulator"

    def __init__(self, folder: Path, api_key: str = "lago-test-key", seed: Path | None = None,
                 now: str | None = None, extra: list[str] | None = None, event_store: str = "postgres",
                 clickhouse_dedup: bool = True, usage_delay_ms: int = 0):
        super().__init__()
        self.folder, self.api_key, self.seed, self.now = folder, api_key, seed, now
        self.event_store, self.clickhouse_dedup, self.usage_delay_ms = event_store, clickhouse_dedup, usage_delay_ms
        self.extra = extra or []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cwd(self) -> Path:
        return ROOT

    def command(self) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "local.lago_emulator", "--port", str(self.port), "--api-key", self.api_key,
                "--db", str(self.folder / "lago.sqlite3"), "--event-store", self.event_store,
                "--clickhouse-dedup", "on" if self.clickhouse_dedup else "off",
                "--usage-delay-ms", str(self.usage_delay_ms), *self.extra]
        if self.seed:
            args += ["--seed", str(self.seed)]
        if self.now:
            args += ["--now", self.now]
        return args

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/admin/{path}", data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            method="POST" if body is not None else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self.admin("faults", faults)

    def set_api_keys(self, keys: dict[str, Any]) -> None:
        """Replace the emulator's API keys (a rotation); ``None`` permissions: every permission."""
        self.admin("api_keys", {"keys": keys})
        self.api_key = next(key for key, permissions in keys.items() if permissions is None)
