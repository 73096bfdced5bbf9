"""The drop-in collectors and what they record: lifecycle, names, keys, disks, and hostile cases."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from collectbus.errors import RecordError
from collectbus.mlperf import (
    CollectorStateError,
    MultiHostTimeSeriesCollector,
    TimeSeriesCollector,
    TimeSeriesData,
    collect_timeseries_sample,
)
from collectbus.recording import Recorder
from collectbus.recording import timeseries as recording

from .conftest import FC
from .test_record_recorder import wait_for

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "mlcommons"

# The ssh stand-in of conftest.py, but a host dies when the file $DEAD_MARK
# exists: the running session ends and every new connection is refused, as
# ssh reports a host that went down.
DYING_SSH = """#!/bin/sh
for a; do last=$a; done
case " $* " in *" -O "*) exit 0;; esac
refuse() { echo "ssh: connect to host node1 port 22: Connection refused" >&2; exit 255; }
[ -e "$DEAD_MARK" ] && refuse
exec 3<&0  # a background job's stdin is /dev/null unless it is given another
sh -c "$last" <&3 3<&- &
loop=$!
while kill -0 "$loop" 2>/dev/null; do
  if [ -e "$DEAD_MARK" ]; then kill "$loop"; refuse; fi
  sleep 0.05
done
"""


def _with_unknown_keys(proc_root: Path) -> Path:
    """The recorded tree, plus a meminfo and a vmstat key that no collectbus column knows."""
    with (proc_root / "meminfo").open("a") as f:
        f.write("FutureKey:        4096 kB\n")
    with (proc_root / "vmstat").open("a") as f:
        f.write("nr_future_pages 77\n")
    return proc_root


# ------------------------------------------------------------------ lifecycle


def test_stop_before_start_and_double_start_are_runtime_errors(proc_root: Path) -> None:
    collector = TimeSeriesCollector(interval_seconds=0.1, proc_root=str(proc_root))
    with pytest.raises(CollectorStateError, match="TimeSeriesCollector not started"):
        collector.stop()
    assert collector.start_time is None
    assert collector.samples == []
    collector.start()
    try:
        assert collector.is_running
        with pytest.raises(RuntimeError, match="already started"):
            collector.start()
    finally:
        samples = collector.stop()
    assert not collector.is_running
    assert collector.stop() is samples  # again: the same samples
    assert collector.samples is samples
    with pytest.raises(RuntimeError, match="already stopped; create a new instance"):
        collector.start()
    assert samples
    assert collector.start_time is not None
    assert collector.end_time is not None
    assert collector.start_time <= collector.end_time
    assert collector.start_time.endswith("Z")


def test_the_single_host_collector_names_this_machine(proc_root: Path) -> None:
    collector = TimeSeriesCollector(interval_seconds=0.1, max_samples=5, proc_root=str(proc_root))
    collector.start()
    wait_for(lambda: len(collector.samples) >= 2, "two samples")
    samples = collector.stop()
    name = socket.gethostname()
    assert {s["hostname"] for s in samples} == {name}
    data = collector.timeseries_data()
    assert data.hosts_requested == [name]
    assert data.hosts_collected == [name]
    assert data.collection_method == "local"
    assert data.num_samples == len(samples) <= 5
    assert data.samples_by_host[name][0].to_dict() == samples[0]


def test_slot_counts_and_duplicates_are_dropped_and_ipv6_kept() -> None:
    collector = MultiHostTimeSeriesCollector(["n1:4", "n1", " n2 ", "::1", "n2:8"])
    assert collector.hosts == ["n1", "n2", "::1"]
    assert collector.get_hosts_with_data() == []
    with pytest.raises(RecordError, match="no host names"):
        MultiHostTimeSeriesCollector([" ", ""])


def test_localhost_is_recorded_under_its_name_with_the_machines_name(proc_root: Path) -> None:
    collector = MultiHostTimeSeriesCollector(
        ["localhost"], interval_seconds=0.1, proc_root=str(proc_root)
    )
    collector.start()
    wait_for(lambda: bool(collector.get_hosts_with_data()), "a sample")
    by_host = collector.stop()
    assert list(by_host) == ["localhost"]
    assert {s["hostname"] for s in by_host["localhost"]} == {socket.gethostname()}


# ------------------------------------------------------------ what is recorded


def test_a_proc_file_with_unknown_keys_keeps_them_everywhere(
    tmp_path: Path, proc_root: Path, fake_ssh: Path
) -> None:
    proc = _with_unknown_keys(proc_root)
    one = collect_timeseries_sample(proc_root=str(proc))
    assert one["meminfo"]["FutureKey"] == 4096
    assert one["vmstat"]["nr_future_pages"] == 77
    assert "errors" not in one
    collector = MultiHostTimeSeriesCollector(
        ["localhost", "node1"],
        interval_seconds=0.2,
        proc_root=str(proc),
        remote_proc_root=str(proc),
        ssh_command=str(fake_ssh),
    )
    collector.start()
    wait_for(lambda: len(collector.get_hosts_with_data()) == 2, "both hosts")
    by_host = collector.stop()
    for host in ("localhost", "node1"):  # read here, and over the SSH session
        sample = by_host[host][0]
        assert sample["meminfo"]["FutureKey"] == 4096, host
        assert sample["vmstat"]["nr_future_pages"] == 77, host
        assert sample["meminfo"]["MemTotal"] == one["meminfo"]["MemTotal"]
    # Written, read back by collectbus, written again: still there.
    path = collector.write(tmp_path / "ts.json")
    again = json.loads(recording.write(recording.load(path), tmp_path / "again.json").read_text())
    assert again["samples_by_host"]["node1"][0]["meminfo"]["FutureKey"] == 4096
    assert again["samples_by_host"]["localhost"][0]["vmstat"]["nr_future_pages"] == 77


def test_every_disk_unless_the_user_filters(proc_root: Path, fake_ssh: Path) -> None:
    every = [line.split()[2] for line in (FC / "diskstats").read_text().splitlines()]
    assert "loop0" in every
    assert "zram0" in every

    def disks(**filters: object) -> dict[str, list[str]]:
        rec = Recorder(
            ["localhost", "node1"],
            interval=0.2,
            proc_root=str(proc_root),
            remote_proc_root=str(proc_root),
            ssh_command=str(fake_ssh),
            **filters,  # type: ignore[arg-type]
        )
        with rec:
            wait_for(lambda: len(rec.snapshot().hosts_answered) == 2, "both hosts")
        data = rec.result
        assert data is not None
        return {h: [d.device for d in data.good_samples(h)[0].disk] for h in data.hosts_requested}

    assert disks() == {"localhost": every, "node1": every}
    kept = [d for d in every if not d.startswith("loop")]
    assert disks(disk_exclude=["^loop"]) == {"localhost": kept, "node1": kept}
    assert disks(disk_include=["^vd", "^zram"], disk_exclude=["^zram"]) == {
        "localhost": ["vda"],
        "node1": ["vda"],
    }
    with pytest.raises(RecordError, match=r"^disk_include/disk_exclude: .* is not a regular"):
        Recorder(["localhost"], disk_include=["(vd"])


# -------------------------------------------------------------- hostile cases


def test_an_ssh_host_that_dies_mid_run_gets_ssh_error_samples(
    tmp_path: Path, proc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = tmp_path / "dying-ssh"
    ssh.write_text(DYING_SSH)
    ssh.chmod(0o755)
    mark = tmp_path / "node1-is-down"
    monkeypatch.setenv("DEAD_MARK", str(mark))
    collector = MultiHostTimeSeriesCollector(
        ["localhost", "node1"],
        interval_seconds=0.2,
        proc_root=str(proc_root),
        remote_proc_root=str(proc_root),
        ssh_command=str(ssh),
    )
    collector.start()
    wait_for(
        lambda: sum("meminfo" in s for s in collector.samples_by_host["node1"]) >= 2,
        "node1 answers",
    )
    mark.touch()
    wait_for(
        lambda: sum("errors" in s for s in collector.samples_by_host["node1"]) >= 3,
        "three failed rounds of node1",
    )
    local_before = len(collector.samples_by_host["localhost"])
    wait_for(
        lambda: len(collector.samples_by_host["localhost"]) > local_before, "localhost goes on"
    )
    by_host = collector.stop()
    node1 = by_host["node1"]
    first_error = next(i for i, s in enumerate(node1) if "errors" in s)
    assert first_error >= 2
    assert all("meminfo" in s and "errors" not in s for s in node1[:first_error])
    failed = node1[first_error:]
    assert all(set(s) == {"timestamp", "hostname", "time_ns", "errors"} for s in failed)
    assert all(list(s["errors"]) == ["ssh"] for s in failed)
    assert all(s["errors"]["ssh"].startswith("node1: ") for s in failed)
    assert all("\n" not in s["errors"]["ssh"] for s in failed)
    assert any("Connection refused" in s["errors"]["ssh"] for s in failed)
    assert all(s["hostname"] == "node1" for s in failed)
    data = collector.timeseries_data()
    assert data.hosts_collected == ["localhost", "node1"]
    assert data.collection_method == "ssh"
    assert data.extra["collectbus"]["errors_by_host"]["node1"]["count"] == len(failed)


def test_a_truncated_mlcommons_file_is_one_line_naming_it(tmp_path: Path) -> None:
    whole = (FIXTURE / "training_20260124_222000_timeseries.json").read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: len(whole) // 2])
    for load in (recording.load, TimeSeriesData.load):
        with pytest.raises(RecordError) as caught:
            load(cut)
        message = str(caught.value)
        assert message.startswith(f"{cut}:")
        assert "not JSON" in message
        assert "\n" not in message


def test_an_mlcommons_sample_without_a_hostname_is_an_error_naming_the_file(
    tmp_path: Path,
) -> None:
    doc = json.loads((FIXTURE / "training_20260124_222000_timeseries.json").read_text())
    del doc["samples_by_host"]["node2"][1]["hostname"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RecordError, match=r"^.*bad\.json: samples_by_host\.node2\[1\]: not a"):
        recording.load(bad)
    with pytest.raises(RecordError, match=r"bad\.json: not a time-series sample: no hostname"):
        TimeSeriesData.load(bad)
