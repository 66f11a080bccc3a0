"""S3 GETs of a batch started ahead of their reading (metering/prefetch.py): the same answers as asked one by
one, a bounded number waiting, S3's errors where the reader asks."""

import io
import threading

import pytest

from tokenmeter.metering.prefetch import PrefetchingS3


class FakeS3:
    """Answers GetObject from a dict, recording the calls; ``hold`` keeps every answer back until released."""

    class exceptions:  # noqa: N801 - boto3's shape
        class NoSuchKey(Exception):
            pass

    def __init__(self, objects: dict[str, bytes]):
        self.objects, self.calls, self.lock = objects, [], threading.Lock()
        self.hold = threading.Event()
        self.hold.set()
        self.bodies: list[io.BytesIO] = []

    def get_object(self, **args):
        with self.lock:
            self.calls.append(args)
        self.hold.wait(10)
        if args["Key"] not in self.objects:
            raise self.exceptions.NoSuchKey(args["Key"])
        body = io.BytesIO(self.objects[args["Key"]])
        self.bodies.append(body)
        return {"Body": body, "ETag": '"e"'}

    def started(self, count: int) -> list[str]:
        """The keys asked for, once ``count`` calls have come (the prefetch threads make them)."""
        for _ in range(1000):
            with self.lock:
                if len(self.calls) >= count:
                    return [c["Key"] for c in self.calls]
            threading.Event().wait(0.01)
        raise AssertionError(f"only {len(self.calls)} of {count} GETs started")


def planned(*keys):
    return [{"Bucket": "logs", "Key": key} for key in keys]


def test_answers_are_the_objects_in_any_order_and_only_a_few_wait_unread():
    keys = [f"k{i}" for i in range(10)]
    s3 = FakeS3({key: key.encode() for key in keys})
    s3.hold.clear()
    prefetching = PrefetchingS3(s3, planned(*keys), ahead=3)
    assert sorted(s3.started(3)) == ["k0", "k1", "k2"]  # three started before anything was read
    s3.hold.set()
    assert prefetching.get_object(Bucket="logs", Key="k1")["Body"].read() == b"k1"
    assert sorted(s3.started(4)) == ["k0", "k1", "k2", "k3"]  # one taken: one more started, never more than three
    for key in ["k0", "k2", *keys[3:]]:
        assert prefetching.get_object(Bucket="logs", Key=key)["Body"].read() == key.encode()
    assert sorted(c["Key"] for c in s3.calls) == keys  # each object asked for once
    prefetching.close()


def test_a_get_not_planned_or_asked_again_goes_to_s3_and_errors_surface_where_asked():
    s3 = FakeS3({"a": b"A"})
    prefetching = PrefetchingS3(s3, planned("a", "missing"), ahead=2)
    with pytest.raises(FakeS3.exceptions.NoSuchKey):
        prefetching.get_object(Bucket="logs", Key="missing")
    assert prefetching.get_object(Bucket="logs", Key="a", Range="bytes=1-")["Body"].read() == b"A"  # not planned
    assert prefetching.get_object(Bucket="logs", Key="a")["Body"].read() == b"A"  # the answer started ahead
    assert prefetching.get_object(Bucket="logs", Key="a")["Body"].read() == b"A"  # asked again: S3 again
    assert [c["Key"] for c in s3.calls].count("a") == 3
    assert prefetching.exceptions is FakeS3.exceptions  # what readers catch is the client's own


def test_close_releases_answers_never_read():
    s3 = FakeS3({"a": b"A", "b": b"B"})
    prefetching = PrefetchingS3(s3, planned("a", "b"), ahead=2)
    s3.started(2)
    prefetching.get_object(Bucket="logs", Key="a")
    prefetching._started[("Bucket", "logs"), ("Key", "b")].result()  # b's answer is in
    prefetching.close()
    # a is the reader's to close; b was never read.
    assert sorted(body.closed for body in s3.bodies) == [False, True]
    assert prefetching.get_object(Bucket="logs", Key="a") is not None  # not planned any more: asked of S3 again


def test_the_s3_client_keeps_a_connection_for_every_answer_waiting(monkeypatch):
    from tokenmeter.core.aws import aws_client, reset_clients
    from tokenmeter.metering.prefetch import AHEAD

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    try:
        # The answers waiting unread, the object being read, and the stream memory's own GET.
        assert aws_client("s3").meta.config.max_pool_connections >= AHEAD + 2
    finally:
        reset_clients()


def test_an_answer_still_coming_at_close_is_closed_when_it_comes():
    s3 = FakeS3({"a": b"A"})
    s3.hold.clear()
    prefetching = PrefetchingS3(s3, planned("a"), ahead=1)
    s3.started(1)  # S3 is answering
    prefetching.close()
    s3.hold.set()
    for _ in range(1000):
        if s3.bodies and s3.bodies[0].closed:
            break
        threading.Event().wait(0.01)
    assert [body.closed for body in s3.bodies] == [True]
