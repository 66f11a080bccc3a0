"""`tokenmeter backfill s3://bucket/prefix`: past inference logs metered as if they had just arrived.

Objects are chosen by the date in their key (Bedrock's .../YYYY/MM/DD/HH/...) or, without one, by
LastModified. Each object is metered as count_tokens meters an S3 notification, so its records get
the ids they would always have had: a repeat, or an object count_tokens already saw, bills nothing
new. Progress is kept in a state file after every object; running the same command again resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from tokenmeter.metering.delivery import SqsOutbox
from tokenmeter.metering.pipeline import meter_trigger
from tokenmeter.metering.tokenizer_pool import TokenizerPool

from .environment import Environment
from .replay import Collector

_KEY_TIME = re.compile(r"/(\d{4})/(\d{2})/(\d{2})(?:/(\d{2}))?(?:/|$)")


@dataclass
class Progress:
    objects: int = 0
    already_done: int = 0
    records: int = 0
    events: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)


def parse_time(text: str) -> datetime:
    """An ISO date or date-time, read as UTC when it names no zone."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r} (e.g. 2026-11-01 or 2026-11-01T06:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def object_time(key: str, last_modified: datetime) -> datetime:
    """The hour a log object covers, from its key when the key has a date path."""
    found = _KEY_TIME.search("/" + key)
    if not found:
        return last_modified
    year, month, day, hour = found.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), tzinfo=UTC)
    except ValueError:  # digits that are no date (a build number, say): go by the object's time
        return last_modified


def backfill(env: Environment, location: str, since: datetime, until: datetime, *, state_file: Path | None = None,
             dry_run: bool = False, progress: bool = True) -> Progress:
    bucket, prefix = _split(location)
    state_file = state_file or Path(f".tokenmeter-backfill-{_fingerprint(location, since, until)}.json")
    done: dict[str, str] = json.loads(state_file.read_text())["done"] if state_file.exists() else {}
    s3, sqs = env.client("s3"), env.client("sqs")
    chosen = [o for o in _objects(s3, bucket, prefix) if since <= object_time(o["Key"], o["LastModified"]) < until]
    tokenizers, result = TokenizerPool(env.metering.tokenizers), Progress()
    for item in _bar(chosen, progress):
        key, etag = item["Key"], item.get("ETag", "").strip('"')
        if done.get(key) == etag:
            result.already_done += 1
            continue
        outbox = Collector() if dry_run else SqsOutbox(sqs, env.queue_url("USAGE_QUEUE_URL"),
                                                       env.queue_url("DEAD_LETTER_QUEUE_URL"))
        event = {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}}}]}
        summary = meter_trigger(event, env.metering, tokenizers, outbox, lambda: s3)
        result.objects += 1
        result.records += summary.records
        result.events += summary.events
        for reason, count in summary.dead_letters.items():
            result.dead_letters[reason] = result.dead_letters.get(reason, 0) + count
        if not dry_run:
            done[key] = etag
            _save(state_file, {"location": location, "since": since.isoformat(), "until": until.isoformat(),
                               "done": done})
    return result


def render(result: Progress, dry_run: bool) -> str:
    dead = ", ".join(f"{r} {n}" for r, n in sorted(result.dead_letters.items())) or "none"
    return (("dry run, nothing sent: " if dry_run else "") +
            f"{result.objects} objects metered ({result.already_done} done before), {result.records:,} records, "
            f"{result.events:,} usage events, dead letters: {dead}")


def as_json(result: Progress) -> str:
    return json.dumps(asdict(result), indent=2)


def _split(location: str) -> tuple[str, str]:
    if not location.startswith("s3://") or len(location) <= 5:
        raise ValueError(f"expected s3://bucket/prefix, got {location!r}")
    bucket, _, prefix = location[5:].partition("/")
    return bucket, prefix


def _objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(o for o in page.get("Contents", []) if not o["Key"].endswith("/"))
    return found


def _bar(items: list[dict[str, Any]], show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc="backfill", unit="object", disable=not show)


def _fingerprint(location: str, since: datetime, until: datetime) -> str:
    return hashlib.blake2b(f"{location}|{since.isoformat()}|{until.isoformat()}".encode(), digest_size=6).hexdigest()


def _save(path: Path, state: dict[str, Any]) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    os.replace(partial, path)  # a crash leaves the old state or the new, never half of one
