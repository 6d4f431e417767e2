"""The event bus contract (kernel.testing) run against every built-in bus."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import httpx
import pytest

from kernel.config import Settings
from kernel.events.bus import EventBus
from kernel.runtime import Tessera
from kernel.testing import EventBusContract


def running_tessera(client: httpx.AsyncClient) -> Tessera:
    return client.app.state.tessera  # type: ignore[attr-defined]


class TestPostgresBus(EventBusContract):
    @pytest.fixture
    def make_bus(self, client: httpx.AsyncClient) -> Callable:
        tessera = running_tessera(client)

        async def make() -> EventBus:
            return tessera.event_buses["postgres"](tessera)

        return make


class TestRedisBus(EventBusContract):
    @pytest.fixture
    def make_bus(
        self, client: httpx.AsyncClient, make_settings: Callable[..., Settings], redis_url: str
    ) -> Callable:
        bus_class = running_tessera(client).event_buses["redis"]
        kernel = SimpleNamespace(settings=make_settings(redis_url=redis_url))

        async def make() -> EventBus:
            return bus_class(kernel)

        return make
