"""``EventBusContract``: what every event bus must do (see :class:`kernel.EventBus`)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kernel.events.bus import RESYNC, EventBus, Listener

#: How long a message may take to reach another instance's listener.
DELIVERY_SECONDS = 5.0
#: How long to wait before concluding that a message will not arrive.
QUIET_SECONDS = 0.5

BusFactory = Callable[[], Awaitable[EventBus]]
#: ``await start({channel: listener or [listeners]})``: a started bus.
StartBus = Callable[..., Awaitable[EventBus]]


def channels(count: int = 1) -> list[str]:
    """Fresh channel names, so that other users of a shared server never interfere."""
    token = secrets.token_hex(4)
    return [f"contract_{token}_{n}" for n in range(count)]


class Received:
    """A listener that keeps what it receives, ignoring reconnect resyncs."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, payload: str) -> None:
        if payload != RESYNC:
            self.queue.put_nowait(payload)

    async def next(self) -> str:
        return await asyncio.wait_for(self.queue.get(), DELIVERY_SECONDS)

    async def nothing_more(self) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), QUIET_SECONDS)
        except TimeoutError:
            return True
        return False


class EventBusContract:
    """Subclass and provide the fixture ``make_bus``: an async callable returning a new,
    not yet started instance of your bus. Every instance it makes must reach the same
    backend, so two instances stand for two Tessera processes. The contract subscribes,
    starts and stops the instances itself (``stop`` may be called twice), on channels of
    its own with random names.
    """

    @pytest.fixture
    async def buses(self, make_bus: BusFactory) -> AsyncIterator[StartBus]:
        """``await start({channel: listener or [listeners]})``: a started bus."""
        started: list[EventBus] = []

        async def start(listeners: dict[str, Listener | list[Listener]] | None = None) -> EventBus:
            bus = await make_bus()
            for channel, subscribed in (listeners or {}).items():
                for listener in subscribed if isinstance(subscribed, list) else [subscribed]:
                    bus.subscribe(channel, listener)
            await bus.start()
            started.append(bus)
            return bus

        yield start
        for bus in reversed(started):
            await bus.stop()

    async def test_publish_reaches_every_instance_listening(self, buses: StartBus) -> None:
        [channel] = channels()
        here, there = Received(), Received()
        publisher = await buses({channel: here})
        await buses({channel: there})
        await publisher.publish(channel, "42")
        assert await there.next() == "42"
        assert await here.next() == "42"

    async def test_messages_arrive_in_publish_order(self, buses: StartBus) -> None:
        [channel] = channels()
        received = Received()
        publisher = await buses()
        await buses({channel: received})
        for number in range(20):
            await publisher.publish(channel, str(number))
        assert [await received.next() for _ in range(20)] == [str(n) for n in range(20)]

    async def test_a_channel_only_gets_its_own_messages(self, buses: StartBus) -> None:
        first, second = channels(2)
        on_first, on_second = Received(), Received()
        publisher = await buses()
        await buses({first: on_first, second: on_second})
        await publisher.publish(second, "p1 7")
        assert await on_second.next() == "p1 7"
        assert await on_first.nothing_more()

    async def test_a_failing_listener_does_not_stop_the_others(self, buses: StartBus) -> None:
        [channel] = channels()
        received = Received()

        def broken(payload: str) -> None:
            raise RuntimeError("listener bug")

        bus = await buses({channel: [broken, received]})
        await bus.publish(channel, "one")
        await bus.publish(channel, "two")
        assert [await received.next(), await received.next()] == ["one", "two"]

    async def test_healthy_while_started(self, buses: StartBus) -> None:
        [channel] = channels()
        bus = await buses({channel: Received()})
        assert await bus.healthy() is True

    async def test_a_stopped_bus_delivers_nothing_and_is_not_healthy(self, buses: StartBus) -> None:
        [channel] = channels()
        received = Received()
        publisher = await buses()
        stopped = await buses({channel: received})
        await stopped.stop()
        await publisher.publish(channel, "after stop")
        assert await received.nothing_more()
        assert await stopped.healthy() is False

    async def test_a_new_instance_starts_after_another_stopped(self, buses: StartBus) -> None:
        [channel] = channels()
        first = await buses({channel: Received()})
        await first.stop()
        received = Received()
        second = await buses({channel: received})
        await second.publish(channel, "again")
        assert await received.next() == "again"
