"""Host families scheduled apart: CPU every second, memory every 10 s, one read per file per tick."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, shutdown, tick, wait_until
from tests.unit.collectors.host.conftest import fixture_collector

from collectbus.bus import CollectionBus, Subscription
from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host import collector as host_module
from collectbus.collectors.host.collector import FAMILIES, HostCollector, families_name
from collectbus.config import load_config
from collectbus.pipeline import add_host_collectors, host_family_groups
from collectbus.records import HostSample


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every read of a /proc file by a host collector, counted by file name."""
    counts: Counter[str] = Counter()
    real = host_module.ProcFile.read

    def counting(self: host_module.ProcFile) -> bytes:
        counts[Path(self.path).name] += 1
        return real(self)

    monkeypatch.setattr(host_module.ProcFile, "read", counting)
    return counts


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus(clock: FakeClock) -> Iterator[CollectionBus]:
    b = CollectionBus(host="h", clock=clock)
    yield b
    shutdown(b, clock)


def _drain(sub: Subscription) -> list[HostSample]:
    out = []
    while (result := sub.get(timeout=0)) is not None:
        (sample,) = result.records
        assert isinstance(sample, HostSample)
        out.append(sample)
    return out


def test_each_file_is_read_once_per_tick_of_its_family_whatever_the_subscribers(
    bus: CollectionBus, clock: FakeClock, proc_root: Path, reads: Counter[str]
) -> None:
    cpu = fixture_collector(proc_root, families=["cpu"])
    mem = fixture_collector(proc_root, families=["mem", "vmstat"])
    rest = fixture_collector(proc_root, families=["disk", "net", "load"], name="host")
    assert (cpu.name, mem.name, rest.name) == ("host-cpu", "host-mem+vmstat", "host")
    bus.add(cpu, interval=1.0, timeout=100)
    bus.add(mem, interval=10.0, timeout=100)
    bus.add(rest, interval=10.0, timeout=100)
    # Five subscribers of the CPU family at their own rates, three of memory.
    cpu_subs = [bus.subscribe(name=f"cpu{n}", collectors=["host-cpu"]) for n in range(3)]
    cpu_subs += [bus.subscribe(name=f"cpu-{s}s", collectors=["host-cpu"], every=s) for s in (2, 5)]
    mem_subs = [bus.subscribe(name=f"mem{n}", collectors=["host-mem+vmstat"]) for n in range(3)]
    everything = bus.subscribe(name="all")
    bus.start()
    assert cpu_subs[0].get(timeout=GUARD_S) is not None
    for _ in range(20):
        tick(clock)  # 1 s .. 20 s
        assert cpu_subs[0].get(timeout=GUARD_S) is not None
    for sub in mem_subs:  # the collections at 0, 10 and 20 s
        assert [sub.get(timeout=GUARD_S) is not None for _ in range(3)] == [True] * 3
    wait_until(lambda: everything.queued == 21 + 3 + 3, "every collection published")
    assert bus.get("host-mem+vmstat") is not None  # within its TTL: no read
    health = bus.health()
    assert health.collector("host-cpu").runs == 21
    assert health.collector("host-mem+vmstat").runs == 3
    assert health.collector("host").runs == 3
    # One read per file per tick of its family, whatever the number of subscribers.
    assert reads == {
        "stat": 21,
        "meminfo": 3,
        "vmstat": 3,
        "diskstats": 3,
        "dev": 3,
        "loadavg": 3,
    }
    samples = _drain(everything)
    cpu_only = [s for s in samples if s.cpu]
    assert len(cpu_only) == 21
    assert all(s.mem is None and s.disk == () and s.load is None for s in cpu_only)
    assert sum(1 for s in samples if s.mem is not None and s.vmstat is not None) == 3
    assert [len(_drain(s)) for s in cpu_subs[3:]] == [11, 5]  # every 2 s and every 5 s
    # Offered: 21 results to each of cpu0..cpu2 and "all", 11 and 5 to the slower
    # two; one collection served them all (counted once the last offer is made).
    shared = 21 * 4 + 11 + 5 - 21
    wait_until(lambda: bus.health().collector("host-cpu").shared == shared, f"{shared} shared")
    assert health.collector("host-mem+vmstat").cache_hits == 1


def test_a_family_collector_reads_only_its_files(proc_root: Path, reads: Counter[str]) -> None:
    collector = fixture_collector(proc_root, families=["mem"])
    (sample,) = collector.collect(CollectContext(host="h"))
    assert sample.mem is not None
    assert (sample.cpu, sample.stat, sample.vmstat, sample.disk) == ((), None, None, ())
    assert sample.errors == ()
    assert reads == {"meminfo": 1}
    assert collector.sources == [str(proc_root / "meminfo")]
    collector.close()


def test_a_family_whose_only_file_is_missing_fails_the_collection(
    proc_root: Path, reads: Counter[str]
) -> None:
    (proc_root / "loadavg").unlink()
    collector = fixture_collector(proc_root, families=["load"])
    with pytest.raises(Exception, match="none of the 1 file could be read"):
        collector.collect(CollectContext(host="h"))


def test_unknown_families_are_refused(proc_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown families swap"):
        HostCollector(proc_root, families=["cpu", "swap"])
    with pytest.raises(ValueError, match="none given"):
        HostCollector(proc_root, families=[])
    assert families_name(FAMILIES) == "host"
    assert families_name(["vmstat", "mem"]) == "host-mem+vmstat"


def test_the_config_schedules_families_apart(tmp_path: Path, proc_root: Path) -> None:
    config_file = tmp_path / "collectbus.toml"
    config_file.write_text(
        '[collectors.host]\ncgroup = "off"\n'
        '[collectors.host.families]\ncpu = "1s"\nload = "1s"\nmem = "10s"\npsi = "1m"\n'
    )
    config = load_config(
        config_file, overrides={"collectors.host.proc_root": str(proc_root)}, env={}
    )
    assert host_family_groups(config.collectors.host.families) == [
        (("cpu", "load"), 1.0),
        (("mem",), 10.0),
        (("psi",), 60.0),
    ]
    bus = CollectionBus(host="h", clock=FakeClock())
    names = add_host_collectors(bus, config)
    assert names == ["host-cpu+load", "host-mem", "host-psi", "host"]
    intervals = {c.name: c.interval_s for c in bus.health().collectors}
    assert intervals == {"host-cpu+load": 1.0, "host-mem": 10.0, "host-psi": 60.0, "host": 10.0}
    bus.stop()


def test_a_bad_family_in_the_config_names_the_key(tmp_path: Path) -> None:
    from collectbus.errors import ConfigError

    config_file = tmp_path / "collectbus.toml"
    config_file.write_text('[collectors.host.families]\nswap = "1s"\n')
    with pytest.raises(ConfigError, match=r"collectors\.host\.families.*unknown family 'swap'"):
        load_config(config_file, env={})
