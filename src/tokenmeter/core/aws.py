"""boto3 clients, one per service per Lambda environment, created on first use.

boto3 takes ~200 ms to import: a handler that never calls AWS never pays for it,
and importing the handler stays fast.
"""

from __future__ import annotations

from typing import Any

_clients: dict[str, Any] = {}
# count_tokens opens up to 16 S3 objects ahead of their reading (metering/prefetch.py), each holding a connection
# until its body is read; botocore keeps 10 per client by default.
_POOL_SIZES = {"s3": 24}


def aws_client(service: str) -> Any:
    if service not in _clients:
        import boto3
        from botocore.config import Config

        pool = _POOL_SIZES.get(service)
        _clients[service] = boto3.client(service, config=Config(max_pool_connections=pool) if pool else None)
    return _clients[service]


def reset_clients() -> None:
    """Forget the clients (tests that switch AWS endpoints or credentials)."""
    _clients.clear()
