"""boto3 clients, one per service per Lambda environment, created on first use.

boto3 takes ~200 ms to import: a handler that never calls AWS never pays for it,
and importing the handler stays fast.
"""

from __future__ import annotations

from typing import Any

_clients: dict[str, Any] = {}


def aws_client(service: str) -> Any:
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def reset_clients() -> None:
    """Forget the clients (tests that switch AWS endpoints or credentials)."""
    _clients.clear()
