from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.unit.bus.bus_doubles import ScriptedCollector, shutdown

from collectbus.bus import CollectionBus
from collectbus.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def collector(clock: FakeClock) -> Iterator[ScriptedCollector]:
    c = ScriptedCollector("c")
    c.clock = clock
    yield c
    c.gate.set()  # never leave a pool thread stuck behind a failed test


@pytest.fixture
def bus(clock: FakeClock, collector: ScriptedCollector) -> Iterator[CollectionBus]:
    b = CollectionBus(host="h", clock=clock)
    yield b
    collector.gate.set()
    shutdown(b, clock)
