"""The Recorder on a fake clock: aligned rounds, the max_samples cap, failures, lifecycle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collectbus.clock import NS_PER_S, FakeClock
from collectbus.errors import RecordError
from collectbus.recording import Recorder
from collectbus.recording.mlcommons import is_error_sample


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (real time, generously) for the recorder's threads to get somewhere."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


def _seen(rec: Recorder) -> int:
    data = rec.snapshot()
    return data.num_samples + data.dropped_samples


def test_the_cap_drops_the_oldest_and_counts_them(proc_root: Path) -> None:
    clock = FakeClock()
    start = clock.time_ns()
    rec = Recorder(
        ["localhost"], interval=1.0, max_samples=3, clock=clock, proc_root=str(proc_root)
    )
    rec.start()
    for n in range(6):
        if n:
            clock.advance(NS_PER_S)
        wait_for(lambda n=n: _seen(rec) == n + 1, f"round {n}")
    data = rec.stop()
    kept = data.samples_by_host["localhost"]
    assert [s.time_ns for s in kept] == [start + n * NS_PER_S for n in (3, 4, 5)]
    assert data.dropped_by_host == {"localhost": 3}
    assert data.dropped_samples == 3
    assert data.num_samples == 3
    assert data.hosts_collected == ("localhost",)
    assert data.to_dict()["collectbus"]["dropped_samples"] == 3  # type: ignore[index]


def test_the_first_drop_is_logged_once(proc_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rec = Recorder(
        ["localhost"], interval=1.0, max_samples=1, clock=clock, proc_root=str(proc_root)
    )
    with caplog.at_level(logging.WARNING, logger="collectbus.recording"):
        rec.start()
        for n in range(4):
            if n:
                clock.advance(NS_PER_S)
            wait_for(lambda n=n: _seen(rec) == n + 1, f"round {n}")
        rec.stop()
    warnings = [r for r in caplog.records if "max_samples" in r.getMessage()]
    assert len(warnings) == 1
    assert "localhost" in warnings[0].getMessage()


def test_stop_takes_a_last_sample_when_the_latest_is_old(proc_root: Path) -> None:
    clock = FakeClock()
    start = clock.time_ns()
    rec = Recorder(["localhost"], interval=1.0, clock=clock, proc_root=str(proc_root))
    rec.start()
    wait_for(lambda: _seen(rec) == 1, "first round")
    clock.advance(int(0.9 * NS_PER_S))
    data = rec.stop()
    assert [s.time_ns for s in data.samples_by_host["localhost"]] == [
        start,
        start + int(0.9 * NS_PER_S),
    ]
    assert rec.end_time == start + int(0.9 * NS_PER_S)


def test_a_host_that_fails_gets_an_error_sample_naming_it(tmp_path: Path, proc_root: Path) -> None:
    clock = FakeClock()
    rec = Recorder(["localhost"], interval=1.0, clock=clock, proc_root=str(tmp_path / "no-proc"))
    rec.start()
    for n in range(3):
        if n:
            clock.advance(NS_PER_S)
        wait_for(lambda n=n: _seen(rec) == n + 1, f"round {n}")
    data = rec.stop()
    samples = data.samples_by_host["localhost"]
    assert len(samples) == 3
    assert all(is_error_sample(s) for s in samples)
    message = samples[0].errors[0]
    assert message.startswith("localhost: ")
    assert "none of the 6 files could be read" in message
    assert "\n" not in message
    assert data.errors_by_host["localhost"].count == 3
    # Listed as collected, as MLCommons lists a host with only failed rounds; not as answered.
    assert data.hosts_collected == ("localhost",)
    assert data.hosts_answered == ()
    assert data.collection_method == "local"
    doc = data.to_dict()["samples_by_host"]["localhost"][0]  # type: ignore[index]
    assert doc["errors"] == {"collection": message}


def test_a_recorder_records_once() -> None:
    rec = Recorder(["localhost"], interval=0.05)
    with pytest.raises(RecordError, match="never started"):
        rec.stop()
    assert rec.start_time is None
    with rec:
        assert rec.is_running
        with pytest.raises(RecordError, match="already running"):
            rec.start()
    assert not rec.is_running
    assert rec.result is not None
    assert rec.stop() is rec.result
    with pytest.raises(RecordError, match="has stopped; a Recorder records once") as err:
        rec.start()
    assert err.value.hint == "create a new Recorder"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval must be positive"),
        ({"max_samples": 0}, "max_samples must be at least 1"),
        ({"timeout": -1}, "timeout must be positive"),
        ({"hosts": []}, "need one or more names"),
        ({"hosts": ["a b"]}, "need one or more names without spaces"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Recorder(**kwargs)  # type: ignore[arg-type]


def test_the_configured_host_name_is_read_locally(proc_root: Path) -> None:
    clock = FakeClock()
    rec = Recorder(
        interval=1.0, clock=clock, proc_root=str(proc_root), local_names=("bench-client-7",)
    )
    assert rec.hosts == ("bench-client-7",)
    assert rec.methods_by_host == {"bench-client-7": "local"}
    rec.start()
    wait_for(lambda: _seen(rec) == 1, "first round")
    data = rec.stop()
    (sample,) = data.samples_by_host["bench-client-7"]
    assert sample.host == "bench-client-7"
    assert sample.errors == ()
    assert rec.ssh_control_dir is None  # no SSH at all


def test_a_fast_recorder_buffers_in_batches_and_stop_still_gets_every_sample(
    proc_root: Path,
) -> None:
    """At 0.1 s, the buffer takes samples ten at a time (or after a second):
    stop() drains what it had not taken yet, and takes no last sample when
    the bus's latest one is recent, whether or not the buffer has it."""
    clock = FakeClock()
    start = clock.time_ns()
    rec = Recorder(["localhost"], interval=0.1, clock=clock, proc_root=str(proc_root))
    rec.start()
    bus = rec._bus
    assert bus is not None

    def on_the_bus(seq: int) -> bool:
        latest = bus.snapshot().get("host:localhost")
        return latest is not None and latest.seq == seq

    wait_for(lambda: on_the_bus(1), "round 0")
    clock.advance(NS_PER_S // 10)
    wait_for(lambda: on_the_bus(2), "round 1")
    clock.advance(NS_PER_S // 100)  # the latest sample is 10 ms old
    data = rec.stop()
    assert [s.time_ns for s in data.samples_by_host["localhost"]] == [
        start,
        start + NS_PER_S // 10,
    ]
