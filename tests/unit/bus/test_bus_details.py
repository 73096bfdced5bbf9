"""What a collector notes with ``ctx.detail`` reaches its collection's event."""

from __future__ import annotations

from collectbus.bus import CollectionBus
from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.errors import CollectError, ParseError
from collectbus.records import Record


class Noting:
    name = "noting"

    def __init__(self) -> None:
        self.fail = False
        self.problem = False

    def collect(self, ctx: CollectContext) -> list[Record]:
        ctx.detail("listing", "complete")
        ctx.detail("repaired", "nothing")
        if self.problem:
            ctx.report(ParseError("src", 3, "bad line"))
        if self.fail:
            raise CollectError("src", "down")
        return []


def test_details_reach_the_event_in_order() -> None:
    collector = Noting()
    bus = CollectionBus(host="h", clock=FakeClock())
    bus.add(collector, tier="fast")
    try:
        ok = bus.collect_now("noting")
        assert ok.event.status == "ok"
        assert ok.event.details == (("listing", "complete"), ("repaired", "nothing"))
        collector.problem = True
        partial = bus.collect_now("noting")
        assert partial.event.status == "partial"
        assert dict(partial.event.details)["listing"] == "complete"
        collector.fail = True
        failed = bus.collect_now("noting")
        assert failed.event.status == "error"
        assert failed.event.details == ()  # a failed collection noted nothing that holds
    finally:
        bus.stop()
