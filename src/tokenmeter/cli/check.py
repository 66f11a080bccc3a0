"""`tokenmeter check FILE...`: what count_tokens would make of local log files, sending nothing.

Each file is read as count_tokens reads an S3 object (JSON Lines or a JSON document, CSV or Parquet, plain or compressed, a
prefix before a line's JSON, CloudWatch Logs exports, Firehose archives), with the metering config and tokenizers of
METERING_CONFIG: the tokens each subscription, model and token type would be billed, what is skipped, and each
dead letter's reason, where and why. For trying a log format, or a config, before pointing the stack at it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.metering.pipeline import meter_trigger
from tokenmeter.metering.tokenizer_pool import TokenizerPool

from .environment import Environment
from .replay import Collector

# Dead letters shown per reason (all are counted).
SHOWN = 5
_BUCKET = "local"


@dataclass
class FileReport:
    path: str
    summary: dict[str, Any]
    billed: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (subscription, model, type): tokens
    dead_letters: list[DeadLetter] = field(default_factory=list)


def check(env: Environment, paths: list[str]) -> list[FileReport]:
    """Each file metered on its own; ValueError for a path that is not a readable file."""
    for path in paths:
        if not Path(path).exists():
            raise ValueError(f"{path}: no such file")
        if not Path(path).is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"{path}: not a file this user can read")
    tokenizers, reports = TokenizerPool(env.metering.tokenizers), []
    for path in paths:
        outbox, files = Collector(), _LocalFiles(path)
        event = {"Records": [{"s3": {"bucket": {"name": _BUCKET}, "object": {"key": quote_plus(path, errors="surrogateescape")}}}]}
        try:
            summary = meter_trigger(event, env.metering, tokenizers, outbox, lambda files=files: files)
        finally:
            files.close()
        billed: Counter[tuple[str, str, str]] = Counter()
        for usage in outbox.usages:
            for kind, tokens in usage.counts.items():
                billed[(usage.subscription, usage.model, kind)] += tokens
        shown = path.encode(errors="surrogateescape").decode(errors="replace")  # a name that is not UTF-8, printable
        reports.append(FileReport(shown, summary.as_dict(), dict(sorted(billed.items())), outbox.dead_letters))
    return reports


def render(reports: list[FileReport]) -> str:
    out = []
    for report in reports:
        s = report.summary
        out.append(f"{report.path}: {s['records']:,} records, {s['metered']:,} billed as {s['events']:,} usage events"
                   + "".join(f"; {outcome}: " + ", ".join(f"{reason} {n:,}" for reason, n in s[key].items())
                             for outcome, key in (("skipped", "skipped"), ("dead letters", "dead_letters")) if s[key]))
        for (subscription, model, kind), tokens in report.billed.items():
            out.append(f"  {subscription:24} {model:44} {kind:14} {tokens:>14,} tokens")
        shown: Counter[str] = Counter()
        for letter in report.dead_letters:
            shown[letter.reason] += 1
            if shown[letter.reason] <= SHOWN:
                out.append(f"  {letter.reason:18} {_where(letter.source)}\n  {'':18} {letter.detail}")
    return "\n".join(out)


def as_json(reports: list[FileReport]) -> str:
    return json.dumps([{"file": r.path, **r.summary,
                        "billed": [{"subscription": s, "model": m, "token_type": k, "tokens": t}
                                   for (s, m, k), t in r.billed.items()],
                        "dead_letter_records": [{"reason": d.reason, "detail": d.detail, "source": _where(d.source)}
                                                for d in r.dead_letters]} for r in reports], indent=2)


def _where(source: str) -> str:
    prefix = f"s3://{_BUCKET}/"
    return source[len(prefix):] if source.startswith(prefix) else source


class _LocalFiles:
    """The one S3 call count_tokens makes of an object (GetObject), answered from a local file."""

    class exceptions:  # noqa: N801 - named as boto3's client attribute is
        class NoSuchKey(Exception):
            pass

    def __init__(self, path: str):
        self._path = Path(path)
        self._opened: list[Any] = []

    def get_object(self, Bucket: str, Key: str, **args: Any) -> dict[str, Any]:  # noqa: N803 - boto3's names
        body = self._path.open("rb")
        self._opened.append(body)
        start = args.get("Range", "bytes=0-")[len("bytes="):].rstrip("-")
        body.seek(int(start or 0))
        stat = self._path.stat()
        etag = hashlib.md5(os.fsencode(self._path.resolve()) + f":{stat.st_size}:{stat.st_mtime_ns}".encode(),
                           usedforsecurity=False).hexdigest()
        return {"Body": body, "ETag": f'"{etag}"', "LastModified": datetime.fromtimestamp(stat.st_mtime, UTC)}

    def close(self) -> None:
        for body in self._opened:
            body.close()
