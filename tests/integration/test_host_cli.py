"""``collectbus host --metric/--every`` and ``collectbus host inventory`` on a filled store."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from collectbus.records import HostInventory
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process

S = 10**9
MINUTE = 60 * S


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    # Three whole minutes of samples every 10 s, ending a minute ago.
    start = (time.time_ns() // MINUTE - 4) * MINUTE
    with open_store(url) as store:
        for i in range(18):
            store.write(
                [
                    make_host_sample("a", start + i * 10 * S, psi=True),
                    make_host_sample("b", start + i * 10 * S, psi=True),
                ]
            )
        for host, threads in (("a", 2), ("b", 8)):
            document = {
                "cpu": {"model": "EPYC", "threads": threads, "sockets": 1, "cores": threads}
            }
            store.write([HostInventory(host=host, time_ns=start, document=json.dumps(document))])
    return collectbus_env(tmp_path, url)


def test_disk_family_is_iostat_per_device(tmp_path: Path, env: dict[str, str]) -> None:
    result = collectbus(
        "host", "--host", "a", "--metric", "disk", "--format", "json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["host"] for r in rows} == {"a"}
    sda = [r for r in rows if r["device"] == "sda" and r["r_s"] is not None]
    assert len(sda) == 17
    # make_host_sample: sda reads 10 I/Os and 2,000 sectors per second, writes twice the I/Os.
    assert {round(r["r_s"], 6) for r in sda} == {10.0}
    assert {round(r["w_s"], 6) for r in sda} == {20.0}
    assert {round(r["read_bytes_per_s"]) for r in sda} == {2000 * 512}


def test_every_averages_per_bucket(tmp_path: Path, env: dict[str, str]) -> None:
    result = collectbus_in_process(
        "host", "--metric", "net", "--every", "1m", "--format", "json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    eth0 = [r for r in rows if r["host"] == "b" and r["iface"] == "eth0"]
    assert len(eth0) == 3  # three minutes
    assert [round(r["rx_bytes_per_s"]) for r in eth0] == [125_000] * 3
    assert all(r["time"].endswith(":00.000Z") for r in eth0)


def test_several_families_as_one_array_of_rows_naming_their_family(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = collectbus_in_process(
        "host", "--metric", "cpu,mem,psi", "--format", "json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    data: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        data.setdefault(row["metric"], []).append(row)
    assert list(data) == ["cpu", "mem", "psi"]
    rated = [r for r in data["cpu"] if r["cpu_percent"] is not None]
    assert {round(r["cpu_percent"], 6) for r in rated} == {40.0}  # type: ignore[arg-type]
    assert all(r["mem_used_bytes"] > 0 for r in data["mem"])  # type: ignore[operator]
    assert "psi_io_full_avg10" in data["psi"][0]
    one = collectbus_in_process(
        "host", "--metric", "cpu", "--format", "json", cwd=tmp_path, env=env
    )
    assert json.loads(one.stdout) == data["cpu"]  # one family: the same rows, the same shape
    table = collectbus_in_process(
        "host", "--metric", "percpu", "--every", "1m", cwd=tmp_path, env=env
    )
    assert table.returncode == 0, table.stderr
    assert "percpu" in table.stdout


def test_bad_metric_and_csv_of_two_families_are_usage_errors(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bad = collectbus_in_process("host", "--metric", "gpu", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert "unknown family 'gpu'" in bad.stderr
    csv = collectbus_in_process(
        "host", "--metric", "cpu,mem", "--format", "csv", cwd=tmp_path, env=env
    )
    assert csv.returncode == 2
    assert csv.stderr.startswith("collectbus: error: --format csv takes one --metric family")


def test_inventory(tmp_path: Path, env: dict[str, str]) -> None:
    result = collectbus_in_process("host", "inventory", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert [(r["host"], r["cpu"]["threads"]) for r in json.loads(result.stdout)] == [
        ("a", 2),
        ("b", 8),
    ]
    one = collectbus_in_process("host", "inventory", "--host", "b", cwd=tmp_path, env=env)
    assert one.returncode == 0, one.stderr
    assert "1/8/8" in one.stdout
    assert " a " not in one.stdout


@pytest.mark.slow
def test_run_stores_the_inventory_of_this_host(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'run.db'}")
    env["COLLECTBUS_HOST"] = "here"
    run = collectbus("run", "--duration", "2s", "--interval", "500ms", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    result = collectbus("host", "inventory", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    [inventory] = json.loads(result.stdout)
    assert inventory["host"] == "here"
    assert inventory["cpu"]["threads"] >= 1
    assert any(nic["name"] == "lo" for nic in inventory["nics"])


# ------------------------------------------- collect host on a hostile /proc

FC = Path(__file__).resolve().parents[1] / "data" / "procfs" / "fc-6.18-2cpu"


def _recorded_proc(root: Path) -> Path:
    """A copy of the recorded /proc of tests/data/procfs/fc-6.18-2cpu."""
    proc = root / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "pressure").mkdir()
    for name in ("stat", "meminfo", "vmstat", "diskstats", "loadavg", "uptime"):
        (proc / name).write_bytes((FC / name).read_bytes())
    (proc / "net" / "dev").write_bytes((FC / "net_dev").read_bytes())
    for resource in ("cpu", "io", "memory"):
        (proc / "pressure" / resource).write_bytes((FC / f"pressure_{resource}").read_bytes())
    return proc


def _edit(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


def _no_constant(name: str) -> object:
    raise AssertionError(f"{name} in the JSON output")


def _collect_host(tmp_path: Path, proc: Path) -> tuple[dict[str, object], str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    # The timeout guards against a hang (a FIFO read would block forever); it times nothing.
    result = collectbus(
        "--proc-root", str(proc), "collect", "host", "--format", "json",
        cwd=tmp_path, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    sample = json.loads(result.stdout, parse_constant=_no_constant)
    assert isinstance(sample, dict)
    return sample, result.stderr


def test_collect_host_on_values_out_of_range_prints_null_and_names_them(tmp_path: Path) -> None:
    proc = _recorded_proc(tmp_path)
    (proc / "uptime").write_bytes(b"inf 6\n")
    _edit(proc / "loadavg", b"1.13 ", b"nan ")
    _edit(proc / "pressure" / "cpu", b"some avg10=5.78", b"some avg10=nan")
    _edit(proc / "net" / "dev", b"eth0: 76987845", b"eth0: 18446744073709551615")
    sample, stderr = _collect_host(tmp_path, proc)

    load = sample["load"]
    uptime = sample["uptime"]
    assert isinstance(load, dict)
    assert isinstance(uptime, dict)
    assert load["load1"] is None
    assert load["load5"] == 0.40
    assert uptime["uptime_s"] is None
    assert uptime["idle_s"] == 6.0
    (eth0,) = [n for n in sample["net"] if n["iface"] == "eth0"]  # type: ignore[attr-defined]
    assert eth0["rx_bytes"] is None
    assert eth0["rx_packets"] == 1784
    (cpu_psi,) = [p for p in sample["psi"] if p["resource"] == "cpu"]  # type: ignore[attr-defined]
    assert cpu_psi["some_avg10"] is None
    (line,) = [x for x in stderr.splitlines() if "out of range" in x]
    for name in ("load.load1", "uptime.uptime_s", "psi.cpu.some_avg10", "net.eth0.rx_bytes"):
        assert name in line
    assert line.startswith("collectbus: warning: 4 values out of range")


def test_collect_host_with_stat_a_fifo_reads_the_rest_without_blocking(tmp_path: Path) -> None:
    proc = _recorded_proc(tmp_path)
    (proc / "stat").unlink()
    os.mkfifo(proc / "stat")  # no writer: a blocking open or read would never return
    sample, stderr = _collect_host(tmp_path, proc)
    assert sample["stat"] is None
    assert sample["cpu"] == []
    assert sample["mem"] is not None
    assert sample["load"] is not None
    (line,) = [x for x in stderr.splitlines() if "stat" in x]
    assert line == f"collectbus: warning: {proc / 'stat'}: not a regular file (a FIFO); not read"


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["--host", "nosuch"],
            "collectbus: no host 'nosuch' in sqlite:///",
            "  hint: hosts stored: a, b",
        ),
        (
            ["--metric", "cgroup"],
            "collectbus: no cgroup values in this window, though the host has samples",
            "  hint: cgroup values are read inside a container, or always with [collectors.host]"
            ' cgroup = "on"; this host\'s collector read none',
        ),
        (
            ["--since", "2020-01-01", "--until", "2020-01-02"],
            "collectbus: no host samples in this window",
            "  hint: widen --since, or collect some: collectbus run --duration 30s",
        ),
    ],
)
def test_an_empty_answer_says_why(
    tmp_path: Path, env: dict[str, str], args: list[str], message: str, hint: str
) -> None:
    result = collectbus_in_process("host", *args, "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    said, hinted = result.stderr.splitlines()
    assert said.startswith(message)
    assert hinted == hint
