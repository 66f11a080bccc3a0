"""Run the emulator as its own process on a free port (tests, benchmarks, the demo)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from local.nats_server import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


class LagoEmulatorProcess:
    """``python -m local.lago_emulator`` with its SQLite file in ``folder``; restartable."""

    def __init__(self, folder: Path, api_key: str = "lago-test-key", seed: Path | None = None,
                 now: str | None = None, extra: list[str] | None = None):
        self.folder, self.api_key, self.seed, self.now = folder, api_key, seed, now
        self.extra = extra or []
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LagoEmulatorProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "local.lago_emulator", "--port", str(self.port), "--api-key", self.api_key,
                "--db", str(self.folder / "lago.sqlite3"), *self.extra]
        if self.seed:
            args += ["--seed", str(self.seed)]
        if self.now:
            args += ["--now", self.now]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lago emulator exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("lago emulator did not start listening within 15 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/admin/{path}", data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            method="POST" if body is not None else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self.admin("faults", faults)
