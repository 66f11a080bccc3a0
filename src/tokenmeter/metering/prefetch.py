"""S3 GETs of a batch's objects started ahead of their reading.

An invocation that takes many S3 notifications (through SQS) reads its objects one after another, and each
GET waits tens of milliseconds for S3's first byte: for sources that write an object per inference, that wait
is most of the billed duration. A few GETs are started ahead in threads, so each object's answer is usually
there when its reading starts. Only the opening GET is taken ahead; the body is still read as the object is
metered, and a read resumed part-way asks S3 again as before. At most ``AHEAD`` answers wait unread, each
holding a connection: the S3 client that count_tokens uses keeps more than that (tokenmeter.core.aws).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from tokenmeter.core.threads import shared_pool

AHEAD = 16


def _key(args: dict[str, Any]) -> tuple:
    return tuple(sorted(args.items()))


class PrefetchingS3:
    """An S3 client whose ``get_object`` answers the planned GETs from answers started ahead; every other call,
    and a GET not planned, goes to the client as it is."""

    def __init__(self, client: Any, planned: list[dict[str, Any]], ahead: int = AHEAD):
        self._client, self._planned, self._ahead = client, planned, ahead
        self._next = 0  # the first planned GET not yet started
        self._started: dict[tuple, Future] = {}
        self._pool = shared_pool("s3-prefetch", AHEAD) if planned else None
        self._start_up_to(ahead)

    def get_object(self, **args: Any) -> dict[str, Any]:
        found = self._started.pop(_key(args), None)
        if found is None:
            return self._client.get_object(**args)
        self._start_up_to(self._next + 1)  # one answer taken: the next one started
        return found.result()  # (what S3 raised, raised here, where the reader tells missing from failing)

    def close(self) -> None:
        """Drop what has not started; an answer that came and was never read closes with its connection, and one
        still coming is closed when it comes."""
        for future in self._started.values():
            if not future.cancel():
                future.add_done_callback(_close_body)
        self._started.clear()
        self._pool = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)  # exceptions, and whatever else a reader asks for

    def _start_up_to(self, end: int) -> None:
        while self._pool is not None and self._next < min(end, len(self._planned)) and len(self._started) < self._ahead:
            args = self._planned[self._next]
            self._next += 1
            key = _key(args)
            if key not in self._started:  # (the same object twice in a batch: one answer, then a GET)
                self._started[key] = self._pool.submit(self._client.get_object, **args)


def _close_body(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()["Body"].close()
