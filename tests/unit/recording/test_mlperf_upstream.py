"""Compatibility with MLCommons storage both ways: its classes load our files, ours load its.

``UpstreamSample`` and ``UpstreamData`` below are a minimal reimplementation
of ``TimeSeriesSample`` and ``TimeSeriesData`` of repository
``mlcommons/storage``, ``mlpstorage_py/rules/models.py`` at commit
``be69aeb5dccb701ae207b27820b7ae7c7bcf80b1`` (``mlpstorage/rules/models.py``
before the rename): the same fields and defaults, ``to_dict`` leaving out None
values, ``from_dict`` keeping the keys that are fields and ignoring the rest,
and raising TypeError when ``timestamp`` or ``hostname`` is missing. The
package itself cannot be imported here (it pulls in its configuration, MPI and
YAML modules), and collectbus does not ship its code, so the semantics are
restated here, for this test only.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from collectbus.mlperf import MultiHostTimeSeriesCollector, TimeSeriesData
from collectbus.recording import timeseries as recording

from .test_record_recorder import wait_for

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "mlcommons"
    / "training_20260124_222000_timeseries.json"
)


# --------------------------------------------- MLCommons' classes, as documented


@dataclass
class UpstreamSample:
    timestamp: str
    hostname: str
    diskstats: list[dict[str, Any]] | None = None
    vmstat: dict[str, int] | None = None
    meminfo: dict[str, int] | None = None
    loadavg: dict[str, float] | None = None
    netdev: list[dict[str, Any]] | None = None
    errors: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpstreamSample:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class UpstreamData:
    collection_interval_seconds: float
    start_time: str
    end_time: str
    num_samples: int
    samples_by_host: dict[str, list[UpstreamSample]]
    collection_method: str
    hosts_requested: list[str]
    hosts_collected: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection_interval_seconds": self.collection_interval_seconds,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "num_samples": self.num_samples,
            "samples_by_host": {
                host: [s.to_dict() for s in samples]
                for host, samples in self.samples_by_host.items()
            },
            "collection_method": self.collection_method,
            "hosts_requested": self.hosts_requested,
            "hosts_collected": self.hosts_collected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpstreamData:
        samples_by_host = {}
        for host, samples in data.get("samples_by_host", {}).items():
            samples_by_host[host] = [UpstreamSample.from_dict(s) for s in samples]
        return cls(
            collection_interval_seconds=data.get("collection_interval_seconds", 10.0),
            start_time=data.get("start_time", ""),
            end_time=data.get("end_time", ""),
            num_samples=data.get("num_samples", 0),
            samples_by_host=samples_by_host,
            collection_method=data.get("collection_method", "unknown"),
            hosts_requested=data.get("hosts_requested", []),
            hosts_collected=data.get("hosts_collected", []),
        )


UPSTREAM_SAMPLE_KEYS = set(UpstreamSample.__dataclass_fields__)


def missing(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``expected`` (a JSON value) is not found, equal, in ``actual``.

    Objects: every key of expected, with its value (recursively); lists: the
    same length, item by item; anything else: equal.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: not an object"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing")
            else:
                out += missing(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: not a list of {len(expected)}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in missing(e, a, f"{where}[{i}]")
        ]
    return [] if expected == actual else [f"{where}: {expected!r} != {actual!r}"]


# ------------------------------------------------------ ours, loaded by theirs


def _record(tmp_path: Path, proc_root: Path, fake_ssh: Path) -> Path:
    """A recording by the drop-in: this host as localhost, an SSH host, one that never answers."""
    collector = MultiHostTimeSeriesCollector(
        ["localhost", "node1:4", "node1", "gone"],
        interval_seconds=0.2,
        proc_root=str(proc_root),
        remote_proc_root=str(proc_root),
        ssh_command=str(fake_ssh),
        ssh_options=["ConnectTimeout=1"],
    )
    collector.start()
    wait_for(
        lambda: all(len(collector.samples_by_host[h]) >= 2 for h in ("localhost", "node1", "gone")),
        "two rounds of every host",
    )
    collector.stop()
    return collector.write(tmp_path / "training_20260124_120000_timeseries.json")


@pytest.fixture
def gone_ssh(tmp_path: Path, fake_ssh: Path) -> Path:
    """The ssh stand-in, but the host ``gone`` refuses connections as ssh says it."""
    path = tmp_path / "ssh-with-gone"
    path.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" gone "*) echo "ssh: connect to host gone port 22: '
        'Connection refused" >&2; exit 255;; esac\n'
        f'exec {fake_ssh} "$@"\n'
    )
    path.chmod(0o755)
    return path


def test_mlcommons_from_dict_loads_a_file_of_the_drop_in(
    tmp_path: Path, proc_root: Path, gone_ssh: Path
) -> None:
    path = _record(tmp_path, proc_root, gone_ssh)
    doc = json.loads(path.read_text())
    theirs = UpstreamData.from_dict(doc)
    # MLCommons reads every key it knows, with the values it would have written.
    assert theirs.hosts_requested == ["localhost", "node1", "gone"]
    assert theirs.hosts_collected == ["localhost", "node1", "gone"]
    assert theirs.collection_method == "ssh"
    assert theirs.num_samples == sum(len(s) for s in theirs.samples_by_host.values())
    assert theirs.start_time <= theirs.end_time
    for host, samples in doc["samples_by_host"].items():
        for raw, sample in zip(samples, theirs.samples_by_host[host], strict=True):
            assert sample.to_dict() == {k: v for k, v in raw.items() if k in UPSTREAM_SAMPLE_KEYS}
    local = theirs.samples_by_host["localhost"][0]
    assert local.hostname == socket.gethostname()  # requested as localhost: the machine's name
    assert local.meminfo is not None
    assert local.meminfo["MemTotal"] == int((proc_root / "meminfo").read_text().split()[1])
    assert [d["device_name"] for d in local.diskstats or []] == [
        line.split()[2] for line in (proc_root / "diskstats").read_text().splitlines()
    ]  # every device, loop and zram too
    remote = theirs.samples_by_host["node1"][0]
    assert remote.loadavg == local.loadavg  # the same files, read over the session
    assert remote.vmstat == local.vmstat
    for sample in theirs.samples_by_host["gone"]:
        assert sample.hostname == "gone"
        assert set(sample.to_dict()) == {"timestamp", "hostname", "errors"}
        assert list(sample.errors or {}) == ["ssh"]
        assert "Connection refused" in (sample.errors or {})["ssh"]
    # And what MLCommons writes back from it is what the file says.
    assert missing(theirs.to_dict(), doc) == []


def test_the_result_file_is_readable_by_all(
    tmp_path: Path, proc_root: Path, gone_ssh: Path
) -> None:
    old = os.umask(0o022)
    try:
        path = _record(tmp_path, proc_root, gone_ssh)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------ theirs, loaded by ours


def test_an_mlcommons_file_loads_into_the_drop_in_with_no_key_lost() -> None:
    upstream = json.loads(FIXTURE.read_text())
    ours = TimeSeriesData.load(FIXTURE)
    assert ours.hosts_collected == ["localhost", "node2"]
    assert ours.samples_by_host["node2"][2].errors == {
        "json": "Expecting value: line 1 column 1 (char 0)"
    }
    assert ours.to_dict() == upstream


def test_an_mlcommons_file_loads_into_collectbus_with_no_key_lost(tmp_path: Path) -> None:
    upstream = json.loads(FIXTURE.read_text())
    data = recording.load(FIXTURE)
    (first, second) = data.samples_by_host["localhost"]
    assert first.host == "localhost"  # filed under its key; its own name is kept apart
    assert data.extras("localhost")[0].hostname == "bench-node-7"
    assert data.extras("localhost")[0].meminfo == {"FutureKey": 4096}
    assert data.extras("localhost")[0].vmstat == {"nr_future_pages": 77}
    assert second.disk[0].discard_ios is None  # a kernel before 4.18
    assert data.hosts_collected == ("localhost", "node2")
    assert data.hosts_answered == ("localhost",)
    # Written again by collectbus, every key of the MLCommons file is there, equal.
    again = json.loads(recording.write(data, tmp_path / "again.json").read_text())
    assert missing(upstream, again) == []
    # And MLCommons reads collectbus's copy as it read its own file.
    assert UpstreamData.from_dict(again).to_dict() == UpstreamData.from_dict(upstream).to_dict()
