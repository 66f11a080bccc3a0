"""In-memory SQS and S3 for the benchmarks: their calls cost Lambda wall time but next to no CPU, so the
benchmarks time tokenmeter's own work without a network or moto in the way."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime


class MemorySqs:
    def __init__(self) -> None:
        self.bodies: dict[str, list[str]] = {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803 - boto3's names
        self.bodies.setdefault(QueueUrl, []).extend(e["MessageBody"] for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


class MemoryS3:
    class exceptions:  # noqa: N801 - boto3's shape
        NoSuchKey = KeyError

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.etags = {key: f'"{hashlib.md5(data).hexdigest()}"' for key, data in objects.items()}  # not timed

    def get_object(self, Bucket: str, Key: str, **_: object) -> dict:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[Key]), "ETag": self.etags[Key],
                "LastModified": datetime(2026, 11, 2, tzinfo=UTC)}
