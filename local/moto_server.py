"""moto's server mode: AWS APIs (SQS, S3, Secrets Manager...) on a loopback port, for the demo and tests."""

from __future__ import annotations

import sys
from typing import Any

from local.processes import LocalServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer(LocalServer):
    name = "moto server"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a function needs to reach this server through boto3."""
        return {"AWS_ENDPOINT_URL": self.url, **CREDENTIALS}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")
