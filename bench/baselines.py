"""The raw baseline the count_tokens figures stand beside, and the timer they share.

The baseline parses each record with `json.loads` and keeps nothing. A loop that keeps what it parsed
(`[json.loads(r) for r in records]`) grows the heap by every record, and the collector walks that heap
again and again: at 50,000 records it took 1.4-1.7x as long per record as the bare loop on this machine,
which made every ratio beside it look that much better. count_tokens keeps none of its records either.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable


def json_loads_loop(texts: Iterable[str | bytes]) -> None:
    """`json.loads` of each text, each result dropped as the next is parsed."""
    loads = json.loads
    for text in texts:
        loads(text)


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def object_lines(body: bytes) -> list[str]:
    """The JSON of each line of an S3 object (gzip or plain), as count_tokens reads it."""
    text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return [line[line.find("{"):] for line in text.decode().splitlines() if line.strip()]
