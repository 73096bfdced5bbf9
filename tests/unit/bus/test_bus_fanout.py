"""Fan-out: bounded queues per subscriber, exact drop counts, isolation."""

from __future__ import annotations

import logging
import threading

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, result, seconds, wait_until

from collectbus.bus.cache import Result
from collectbus.bus.fanout import Fanout
from collectbus.bus.subscription import Subscription
from collectbus.clock import FakeClock
from collectbus.errors import BusError


def _seqs(sub: Subscription) -> list[int]:
    out = []
    while (r := sub.get(timeout=0)) is not None:
        out.append(r.seq)
    return out


@pytest.fixture
def fanout(clock: FakeClock) -> Fanout:
    return Fanout(clock)


def test_drop_oldest_keeps_the_newest_and_counts_each_eviction(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", maxsize=3, policy="drop_oldest")
    for seq in range(1, 11):
        fanout.publish(result(seq=seq))
    assert (sub.dropped, sub.queued) == (7, 3)
    assert _seqs(sub) == [8, 9, 10]
    assert sub.delivered == 3


def test_drop_newest_keeps_the_oldest_and_counts_each_refusal(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", maxsize=3, policy="drop_newest")
    for seq in range(1, 11):
        fanout.publish(result(seq=seq))
    assert sub.dropped == 7
    assert _seqs(sub) == [1, 2, 3]


def test_latest_keeps_one_result_and_counts_the_replaced_ones(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", maxsize=50, policy="latest")
    for seq in range(1, 11):
        fanout.publish(result(seq=seq))
    assert sub.dropped == 9
    assert _seqs(sub) == [10]


def test_block_waits_for_room_until_its_deadline_then_drops(
    fanout: Fanout, clock: FakeClock
) -> None:
    sub = fanout.subscribe(name="s", maxsize=2, policy="block", block_timeout=1.0)
    for seq in (1, 2, 3):
        fanout.publish(result(seq=seq))  # returns at once; 3 waits for room
    assert (sub.dropped, sub.queued) == (0, 3)
    clock.advance(seconds(0.999))
    assert (sub.dropped, sub.queued) == (0, 3)  # still within its deadline
    clock.advance(seconds(0.001))
    assert (sub.dropped, sub.queued) == (1, 2)  # no room came in time: dropped

    fanout.publish(result(seq=4))
    clock.advance(seconds(0.5))
    fanout.publish(result(seq=5))
    first = sub.get(timeout=0)  # makes room: the oldest waiting result gets in
    assert first is not None
    assert first.seq == 1
    assert (sub.dropped, sub.queued) == (1, 3)
    clock.advance(seconds(0.5))  # 4 is in the queue; 5 still has 0.5 s
    assert (sub.dropped, sub.queued) == (1, 3)
    clock.advance(seconds(0.5))  # 5 waited 1 s for room in vain
    assert (sub.dropped, sub.queued) == (2, 2)
    assert _seqs(sub) == [2, 4]
    assert (sub.delivered, sub.dropped, sub.queued) == (3, 2, 0)


def test_a_blocked_subscriber_does_not_hold_up_the_publisher_or_the_others(
    fanout: Fanout, clock: FakeClock
) -> None:
    blocked = fanout.subscribe(name="blocked", maxsize=1, policy="block", block_timeout=60)
    other = fanout.subscribe(name="other")
    for seq in range(1, 11):
        fanout.publish(result(seq=seq))  # nothing here waits: this thread goes on
    assert _seqs(other) == list(range(1, 11))
    assert (blocked.dropped, blocked.queued) == (0, 10)
    blocked.close()  # what waits for room is still delivered, in order, as room comes
    fanout.publish(result(seq=11))  # after close: not offered
    assert [r.seq for r in blocked] == list(range(1, 11))
    assert (blocked.delivered, blocked.dropped, blocked.queued) == (10, 0, 0)


def test_counts_are_exact_with_concurrent_publishers_and_a_consumer(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", maxsize=7, policy="drop_oldest")
    newest = fanout.subscribe(name="n", maxsize=5, policy="drop_newest")
    taken = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or sub.queued:
            r = sub.get(timeout=0.01)
            if r is not None:
                taken.append(r)

    consumer = threading.Thread(target=consume)
    consumer.start()

    def produce() -> None:
        for _ in range(2000):
            fanout.publish(result())

    publishers = [threading.Thread(target=produce) for _ in range(4)]
    for p in publishers:
        p.start()
    for p in publishers:
        p.join(GUARD_S * 3)
    stop.set()
    consumer.join(GUARD_S)
    assert sub.delivered + sub.dropped + sub.queued == 8000
    assert sub.delivered == len(taken)
    assert newest.dropped + newest.queued == 8000
    assert newest.queued == 5


def test_a_raising_callback_is_counted_and_isolated(
    fanout: Fanout, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[int] = []

    def explode(r: Result) -> None:
        raise ValueError(f"cannot handle {r.seq}")

    bad = fanout.subscribe(explode, name="bad")
    fine = fanout.subscribe(lambda r: good.append(r.seq), name="fine")
    with caplog.at_level(logging.ERROR, logger="collectbus.bus"):
        for seq in range(1, 21):
            fanout.publish(result(seq=seq))
        for sub, drained in fanout.close_all():
            assert drained.wait(GUARD_S), sub.name
    assert good == list(range(1, 21))
    assert (bad.errors, bad.delivered, bad.dropped) == (20, 20, 0)
    assert fine.errors == 0
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 20
    assert (
        messages[0] == "subscriber bad: callback raised ValueError: cannot handle 1 (result c #1)"
    )


def test_a_slow_callback_does_not_stall_another_subscriber(fanout: Fanout) -> None:
    gate = threading.Event()
    fast: list[int] = []
    done = threading.Event()

    def record(r: Result) -> None:
        fast.append(r.seq)
        if len(fast) == 5:
            done.set()

    def stuck(r: Result) -> None:
        gate.wait(GUARD_S)

    slow = fanout.subscribe(stuck, name="slow")
    fanout.subscribe(record, name="fast")
    for seq in range(1, 6):
        fanout.publish(result(seq=seq))
    assert done.wait(GUARD_S)
    assert fast == [1, 2, 3, 4, 5]
    assert slow.delivered <= 1  # still stuck in its first callback
    gate.set()


def test_drop_warnings_are_rate_limited_and_carry_the_count(
    fanout: Fanout, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fanout.subscribe(name="s", maxsize=1, policy="drop_newest")
    with caplog.at_level(logging.WARNING, logger="collectbus.bus"):
        for _ in range(6):  # 1 queued, 5 dropped: one warning at the first drop
            fanout.publish(result())
        clock.advance(seconds(9.9))
        fanout.publish(result())  # within the interval: no warning
        clock.advance(seconds(0.1))
        fanout.publish(result())  # warns about the 2 since the last warning
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "subscriber s: dropped 1 result(s) since the last warning "
        "(policy drop_newest, maxsize 1, 1 dropped in all)",
        "subscriber s: dropped 6 result(s) since the last warning "
        "(policy drop_newest, maxsize 1, 7 dropped in all)",
    ]


def test_every_delivers_the_first_result_of_each_period(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", every=10.0)
    for n, second in enumerate([0, 1, 9, 10, 15, 20, 29, 41]):
        fanout.publish(result(seq=n + 1, tick_ns=seconds(second)))
    assert _seqs(sub) == [1, 4, 6, 8]
    assert sub.dropped == 0


def test_subscribers_only_get_the_collectors_they_asked_for(fanout: Fanout) -> None:
    only_a = fanout.subscribe(name="a", collectors=["a"])
    everyone = fanout.subscribe(name="all")
    fanout.publish(result("a", seq=1))
    fanout.publish(result("b", seq=1))
    assert _seqs(only_a) == [1]
    assert _seqs(everyone) == [1, 1]


def test_pull_iteration_ends_once_closed_and_drained(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s")
    for seq in (1, 2, 3):
        fanout.publish(result(seq=seq))
    sub.close()
    fanout.publish(result(seq=4))  # after close: not received
    assert [r.seq for r in sub] == [1, 2, 3]
    assert sub.get(timeout=0) is None


def test_a_pull_reader_is_woken_by_publish(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s")
    got: list[Result | None] = []
    reader = threading.Thread(target=lambda: got.append(sub.get(timeout=GUARD_S)))
    reader.start()
    publisher = threading.Timer(0.01, fanout.publish, args=(result(seq=7),))
    publisher.start()
    reader.join(GUARD_S)
    assert got[0] is not None
    assert got[0].seq == 7


def test_misuse_is_refused(fanout: Fanout) -> None:
    cb = fanout.subscribe(lambda r: None, name="cb")
    with pytest.raises(BusError, match="already exists"):
        fanout.subscribe(name="cb")
    with pytest.raises(BusError, match="cannot be read"):
        cb.get(timeout=0)
    with pytest.raises(BusError, match="unknown policy"):
        fanout.subscribe(name="x", policy="random")  # type: ignore[arg-type]
    with pytest.raises(BusError, match="maxsize"):
        fanout.subscribe(name="x", maxsize=0)
    cb.close()


def test_a_batch_consumer_sleeps_until_its_batch_is_full(fanout: Fanout) -> None:
    got: list[int] = []
    first = threading.Event()

    def take(r: Result) -> None:
        got.append(r.seq)
        first.set()

    sub = fanout.subscribe(take, name="s", batch=3, linger=3600.0)
    wait_until(lambda: sub._sleepers == 1, "the consumer asleep on its empty queue")
    fanout.publish(result(seq=1))
    fanout.publish(result(seq=2))
    assert not first.wait(0.05), "woken before its batch was full"
    assert (sub.delivered, sub.queued) == (0, 2)
    fanout.publish(result(seq=3))
    assert first.wait(GUARD_S)
    for sub_, drained in fanout.close_all():
        assert drained.wait(GUARD_S), sub_.name
    assert got == [1, 2, 3]


def test_a_partial_batch_is_delivered_after_linger(fanout: Fanout) -> None:
    sub = fanout.subscribe(name="s", batch=100, linger=0.01)
    reader_got: list[Result | None] = []
    reader = threading.Thread(target=lambda: reader_got.append(sub.get(timeout=GUARD_S)))
    reader.start()
    fanout.publish(result(seq=1))
    reader.join(GUARD_S)
    assert [r.seq for r in reader_got if r is not None] == [1]


def test_closing_a_batch_subscriber_delivers_its_partial_batch(fanout: Fanout) -> None:
    got: list[int] = []
    sub = fanout.subscribe(lambda r: got.append(r.seq), name="s", batch=10, linger=3600.0)
    for seq in (1, 2, 3):
        fanout.publish(result(seq=seq))
    sub.close()
    assert sub._finished.wait(GUARD_S)
    assert got == [1, 2, 3]
    assert (sub.delivered, sub.dropped, sub.queued) == (3, 0, 0)


def test_a_batch_never_exceeds_the_queue(fanout: Fanout) -> None:
    """A full queue wakes the consumer whatever the batch: drop_oldest with
    maxsize 2 and batch 10 still delivers, evicting and counting."""
    got: list[int] = []
    done = threading.Event()

    def take(r: Result) -> None:
        got.append(r.seq)
        done.set()

    sub = fanout.subscribe(take, name="s", maxsize=2, batch=10, linger=3600.0)
    assert sub.batch == 2
    for seq in (1, 2, 3):
        fanout.publish(result(seq=seq))
    assert done.wait(GUARD_S)
    for sub_, drained in fanout.close_all():
        assert drained.wait(GUARD_S), sub_.name
    assert sub.delivered + sub.dropped == 3
    assert got[-1] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"batch": 0}, "batch must be at least 1"), ({"linger": 0.0}, "linger must be positive")],
)
def test_bad_batch_settings_are_refused(
    fanout: Fanout, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(BusError, match=message):
        fanout.subscribe(name="s", **kwargs)  # type: ignore[arg-type]
