"""tokenmeter's lean NATS paths against a real nats-server: acks written in one go, messages handed over where
they are read, and the puller asking for the next batch before the caller is done with this one. Nothing may be
lost or acked twice."""

import asyncio
import time

import pytest
from nats import errors
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from tokenmeter.nats.client import Client
from tokenmeter.shipping.puller import Puller

ACK_WAIT = 30  # longer than any test: a message comes back sooner only because it was nak'ed


def run(coroutine):
    return asyncio.run(coroutine)


async def _stream(url: str, count: int) -> tuple[Client, object]:
    nc = Client()
    await nc.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    for i in range(count):
        await js.publish(f"t.{i}", str(i).encode())
    await js.add_consumer("T", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT))
    return nc, js


async def _settled(js, done, within: float = 3.0):
    """The consumer's info once ``done(info)`` holds (or after ``within`` s): the server applies acks in its
    own time, after the client has sent them."""
    started = time.monotonic()
    while not done(info := await js.consumer_info("T", "c")) and time.monotonic() - started < within:
        await asyncio.sleep(0.05)
    return info


def test_ack_all_acknowledges_each_message_once(nats_server):
    async def go():
        nc, js = await _stream(nats_server.url, 12)
        puller = await Puller(nc, "T", "c").start()
        messages = await puller.fetch(12, timeout=2)
        await nc.ack_all(messages[:7])
        with pytest.raises(errors.MsgAlreadyAckdError):  # one already acked: none of the batch is sent
            await nc.ack_all(messages[6:])
        await nc.flush()
        info = await _settled(js, lambda i: i.ack_floor.consumer_seq >= 7)
        assert all(m.is_acked for m in messages[:7]) and not any(m.is_acked for m in messages[7:])
        await puller.stop()
        await nc.close()
        return info

    info = run(go())
    assert info.ack_floor.consumer_seq == 7 and info.num_ack_pending == 5


def test_send_refuses_a_closed_connection_as_publish_does(nats_server):
    async def go():
        nc = Client()
        await nc.connect(nats_server.url)
        await nc.close()
        with pytest.raises(errors.ConnectionClosedError):
            await nc.send(b"PUB t.x  0\r\n\r\n")
        with pytest.raises(errors.ConnectionClosedError):
            await nc.publish("t.x", b"")

    run(go())


def test_prefetched_messages_are_handed_back_at_stop_not_after_the_ack_wait(nats_server):
    async def go():
        nc, js = await _stream(nats_server.url, 25)
        puller = await Puller(nc, "T", "c").start()
        first = await puller.fetch(10, timeout=2, prefetch=True)  # 15 left: the next 10 are asked for now
        await nc.ack_all(first)
        await puller.stop()
        after = await Puller(nc, "T", "c").start()
        rest, started = [], time.monotonic()
        while len(rest) < 15 and time.monotonic() - started < 5:  # the server takes naks in its own time
            batch = await after.fetch(100, timeout=1)
            await nc.ack_all(batch)
            rest += batch
        await nc.flush()
        info = await _settled(js, lambda i: i.num_ack_pending == 0)
        await after.stop()
        await nc.close()
        return [m.data for m in first], [m.data for m in rest], info

    first, rest, info = run(go())
    assert first == [str(i).encode() for i in range(10)]
    # The 10 prefetched and nak'ed came back within seconds beside the 5 never delivered: all 25, each once.
    assert sorted(int(d) for d in rest) == list(range(10, 25))
    assert info.num_ack_pending == 0 and info.num_pending == 0


def test_a_prefetching_puller_fetches_every_message_once_in_order(nats_server):
    async def go():
        nc, js = await _stream(nats_server.url, 57)
        puller = await Puller(nc, "T", "c").start()
        seen = []
        while True:
            try:
                batch = await puller.fetch(10, timeout=0.5, prefetch=True)
            except errors.TimeoutError:
                break
            seen.extend(int(m.data) for m in batch)
            await nc.ack_all(batch)
        await puller.stop()
        await nc.close()
        return seen

    assert run(go()) == list(range(57))


def test_a_subscription_in_place_gets_what_a_callback_subscription_gets(nats_server):
    async def go():
        nc = Client()
        errors_seen: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors_seen.append(exc)

        await nc.connect(nats_server.url, error_cb=on_error)
        in_place, by_callback = [], []

        def handler(msg):
            if msg.data == b"boom":
                raise ValueError("a handler's own failure")
            in_place.append((msg.subject, msg.reply, msg.data, msg.headers))

        async def callback(msg):
            by_callback.append((msg.subject, msg.reply, msg.data, msg.headers))

        sub = await nc.subscribe_in_place("in.>", handler)
        await nc.subscribe("in.>", cb=callback)
        await nc.publish("in.a", b"1")
        await nc.publish("in.b", b"boom")  # goes to the error callback; the reading goes on
        await nc.publish("in.c", b"3", reply="r.1", headers={"Nats-Msg-Id": "e-3", "Status": "100"})
        await nc.flush()
        await asyncio.sleep(0.1)  # the callback subscription's own task delivers in its own time
        assert in_place == [("in.a", "", b"1", None), ("in.c", "r.1", b"3", {"Nats-Msg-Id": "e-3", "Status": "100"})]
        assert by_callback == [("in.a", "", b"1", None), ("in.b", "", b"boom", None), in_place[1]]
        assert [str(e) for e in errors_seen] == ["a handler's own failure"]
        await sub.unsubscribe()
        await nc.publish("in.d", b"4")
        await nc.flush()
        await asyncio.sleep(0.1)
        assert len(in_place) == 2 and len(by_callback) == 4  # nothing after unsubscribing
        await nc.close()

    run(go())


def test_an_in_place_handler_and_what_it_holds_go_with_its_subscription(nats_server):
    # publish_event subscribes a handler per call on a connection kept across invocations: a call's acks must not
    # outlive it, however many calls the connection serves.
    import gc
    import weakref

    class Call:
        def receive(self, msg):
            pass

    async def go():
        nc = Client()
        await nc.connect(nats_server.url)
        kept = []
        for _ in range(50):
            call = Call()
            kept.append(weakref.ref(call))
            sub = await nc.subscribe_in_place("calls.>", call.receive)
            await nc.publish("calls.1", b"ack")
            await nc.flush()
            await sub.unsubscribe()
            del call, sub
        gc.collect()
        alive = sum(ref() is not None for ref in kept)  # (counted while the connection lives on)
        await nc.close()
        return alive

    assert run(go()) == 0
