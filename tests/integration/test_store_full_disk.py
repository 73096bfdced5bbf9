"""SQLite on a disk that filled up: once a little space is freed, writing resumes.

The disk is a real one of 3 MiB (a tmpfs mounted for the test, which needs
root; skipped without it, except when ``CI=true``), filled to the last byte
by a file the test then shortens. While the disk is full every write fails
and the daemon's writer keeps the collections; the WAL must not keep the
space those failed writes took, or the space freed is used up again at once.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.pipeline.sink import STORE_RETRY_MAX_S, StoreSink
from collectbus.records import CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

T0 = 1_800_000_000 * NS_PER_S
DISK = "3m"
FREED = 400_000


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
    return filler


def _result(i: int) -> Result:
    time_ns = T0 + i * NS_PER_S
    event = CollectionEvent(
        source="host", host="h1", started_ns=time_ns, duration_ns=1, status="ok", records=1
    )
    sample = make_host_sample("h1", time_ns)
    return Result(
        collector="host", seq=i, tick_ns=time_ns, records=(sample,), event=event, stale=False
    )


def test_freeing_a_little_space_lets_the_kept_collections_be_written(disk: Path) -> None:
    clock = FakeClock(start_ns=T0)
    store: Store = open_store(f"sqlite:///{disk / 'full.db'}", clock=clock)
    # Checkpoints every 10 s: at ~100 KB of WAL a commit, the default minute
    # would fill this small disk on its own.
    sink = StoreSink(
        store, clock=clock, compact_after_s=3600, compact_every_s=600, checkpoint_every_s=10
    )
    try:
        for i in range(-30, 0):  # a while of normal writing, with its checkpoints
            clock.advance(NS_PER_S)
            sink(_result(i))
        assert sink.checkpoints >= 1
        filler = _fill(disk)
        for i in range(1, 11):
            clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            sink(_result(i))
        assert sink.written_collections == 30
        assert sink.pending == 10
        assert sink.last_error is not None
        assert "disk is full" in sink.last_error

        os.truncate(filler, filler.stat().st_size - FREED)
        sent = 11
        for _ in range(3):
            clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            sink(_result(sent))
            sent += 1
            if sink.pending == 0:
                break
        assert sink.pending == 0, sink.last_error
        assert sink.lost_collections == 0
        # The WAL no longer takes what was freed: writing goes on.
        for _ in range(30):
            clock.advance(NS_PER_S)
            sink(_result(sent))
            sent += 1
        assert sink.pending == 0, sink.last_error
        # Every collection made (-30 to -1, then 1 to sent - 1) is stored.
        assert sink.written_collections == 30 + sent - 1
        assert len(store.collection_log()) == 30 + sent - 1
    finally:
        store.close()
