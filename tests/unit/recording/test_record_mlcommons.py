"""Samples in MLCommons storage's TimeSeriesSample shape, and back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.collectors.host.parse import parse_meminfo_detail
from collectbus.errors import RecordError
from collectbus.recording.mlcommons import is_error_sample, sample_from_dict, sample_to_dict
from collectbus.records import HostSample
from collectbus.testing.hosts import make_host_sample

from .conftest import FC


def test_a_recorded_sample_survives_json_and_back(proc_root: Path) -> None:
    collector = HostCollector(proc_root=proc_root, host="node1")
    (sample,) = collector.collect(CollectContext(host="here"))
    collector.close()
    assert sample.cpu
    assert sample.mem
    assert sample.disk
    assert sample.net
    assert sample.errors == ()
    doc = json.loads(json.dumps(sample_to_dict(sample)))
    assert sample_from_dict(doc, source="t") == sample


def test_field_names_are_those_of_mlcommons() -> None:
    sample = make_host_sample("node1", 1_700_000_001_000_000_000)
    doc = sample_to_dict(sample)
    assert doc["timestamp"] == "2023-11-14T22:13:21Z"
    assert doc["hostname"] == "node1"
    disk = doc["diskstats"][0]
    row = sample.disk[0]
    assert disk["device_name"] == row.device
    assert disk["reads_completed"] == row.read_ios
    assert disk["sectors_written"] == row.write_sectors
    assert disk["weighted_time_doing_ios_ms"] == row.time_in_queue_ms
    net = doc["netdev"][0]
    assert net["interface_name"] == sample.net[0].iface
    assert net["rx_errors"] == sample.net[0].rx_errs
    assert net["tx_collisions"] == sample.net[0].tx_colls
    assert doc["loadavg"]["load_1min"] == sample.load.load1  # type: ignore[union-attr]
    assert set(doc) >= {"vmstat", "meminfo", "cpu", "stat"}


def test_meminfo_keeps_the_file_keys_and_kb() -> None:
    raw = (FC / "meminfo").read_bytes()
    sample = HostSample(host="h", time_ns=0, mem=parse_meminfo_detail(raw).values)
    meminfo = sample_to_dict(sample)["meminfo"]
    first = raw.splitlines()[0].split()  # b"MemTotal:", b"<kB>", b"kB"
    assert meminfo["MemTotal"] == int(first[1])
    assert meminfo["HugePages_Total"] == int(
        next(ln for ln in raw.splitlines() if ln.startswith(b"HugePages_Total")).split()[1]
    )


def test_an_error_sample_is_errors_only() -> None:
    sample = HostSample(host="dead", time_ns=5 * 10**9, errors=("dead: no answer in time",))
    doc = sample_to_dict(sample)
    assert doc == {
        "timestamp": "1970-01-01T00:00:05Z",
        "hostname": "dead",
        "time_ns": 5 * 10**9,
        "errors": {"collection": "dead: no answer in time"},
    }
    assert is_error_sample(sample_from_dict(doc, source="t"))
    assert not is_error_sample(make_host_sample("h", 0))


def test_a_partial_sample_keys_its_errors_by_file() -> None:
    sample = dataclasses.replace(
        make_host_sample("h", 0), errors=("h:/proc/net/dev:3: bad", "h:/proc/stat: unreadable")
    )
    assert sample_to_dict(sample)["errors"] == {
        "netdev": "h:/proc/net/dev:3: bad",
        "stat": "h:/proc/stat: unreadable",
    }


def test_an_mlcommons_sample_without_collectbus_extras_reads() -> None:
    doc = {
        "timestamp": "2026-01-24T12:00:00Z",
        "hostname": "testhost",
        "vmstat": {"pgpgin": 123},
        "diskstats": [{"device_name": "sda", "reads_completed": 1, "reads_merged": 0,
                       "sectors_read": 8, "time_reading_ms": 1, "writes_completed": 0,
                       "writes_merged": 0, "sectors_written": 0, "time_writing_ms": 0,
                       "ios_in_progress": 0, "time_doing_ios_ms": 1,
                       "weighted_time_doing_ios_ms": 1}],
    }  # fmt: skip
    sample = sample_from_dict(doc, source="t")
    assert sample.host == "testhost"
    assert sample.disk[0].device == "sda"
    assert sample.disk[0].discard_ios is None
    assert sample.time_ns == 1_769_256_000 * 10**9


def test_a_sample_without_hostname_is_an_error_naming_the_source() -> None:
    with pytest.raises(RecordError, match=r"^r.json: samples\[3\]: not a time-series sample"):
        sample_from_dict({"timestamp": "x"}, source="r.json: samples[3]")
