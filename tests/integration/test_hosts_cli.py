"""``collectbus hosts`` on SQLite and PostgreSQL: states from the last sample's
age, the latest figures against a recomputation from every stored row, sorting,
an empty store, and hosts whose latest rows are compacted or span a reboot."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from collectbus.clock import NS_PER_S
from collectbus.records import CpuRow, HostSample
from collectbus.store import open as open_store
from collectbus.store.reader import open_reader
from collectbus.testing.hosts import BOOT_TIME_S, make_host_sample
from tests.integration.cli_helpers import collectbus, collectbus_env

S = NS_PER_S

#: name: (age of the last sample in s, busy share of the CPUs); the interval is 10 s.
HOSTS = {
    "n01": (1, 0.9),  # reporting
    "n02": (2, 0.2),  # reporting
    "n03": (55, 0.5),  # late: 30 s < 55 s <= 100 s
    "n04": (400, 0.7),  # silent
}


def _busy(sample: HostSample, share: float) -> HostSample:
    """``sample`` with its CPUs ``share`` busy since boot (user), the rest idle."""
    up = (sample.time_ns - (sample.stat.boot_time_s if sample.stat else BOOT_TIME_S) * S) // S
    rows = []
    for row in sample.cpu:
        ticks = 100 * (2 if row.cpu == -1 else 1) * up
        rows.append(CpuRow(row.cpu, int(share * ticks), 0, 0, ticks - int(share * ticks),
                           0, 0, 0, 0, 0, 0))  # fmt: skip
    return dataclasses.replace(sample, cpu=tuple(rows))


def _fill(url: str, now: int) -> None:
    with open_store(url) as store:
        for n, (name, (age, share)) in enumerate(HOSTS.items()):
            last = now - age * S
            store.write([_busy(make_host_sample(name, last - k * 10 * S, seed=n), share)
                         for k in (3, 2, 1, 0)])  # fmt: skip
        # One sample only: no CPU step.
        store.write([make_host_sample("single", now - 3 * S)])
        # Rebooted between its last two samples: no CPU step either.
        store.write([make_host_sample("reboot", now - 14 * S)])
        store.write([make_host_sample("reboot", now - 4 * S, boot_time_s=(now - 8 * S) // S)])
        # Silent for 3 hours, its rows compacted into chunks.
        old = now - 3 * 3600 * S
        store.write([_busy(make_host_sample("archived", old - k * 10 * S), 0.3) for k in (2, 1, 0)])
        store.compact(now_ns=now, older_than_s=3600)


def _expected(url: str, now: int) -> dict[str, dict[str, object]]:
    """Every host's row, recomputed from all its stored rows (recent and compacted)."""
    out: dict[str, dict[str, object]] = {}
    with open_reader(url) as reader:
        tables = reader.read_host_rows(("stat", "cpu", "mem", "load"))
    by_host: dict[str, dict[str, list[dict[str, object]]]] = {}
    for table, (names, rows) in tables.items():
        for row in rows:
            record = dict(zip(names, row, strict=True))
            if table == "cpu" and record["cpu"] != -1:
                continue
            by_host.setdefault(str(record["host"]), {}).setdefault(table, []).append(record)
    for host, found in by_host.items():
        last = max(int(str(r["time_ns"])) for rows in found.values() for r in rows)
        age = (now - last) / S
        state = "silent" if age > 100 else "late" if age > 30 else "reporting"
        cpu_rows = sorted(found["cpu"], key=lambda r: int(str(r["time_ns"])))
        boots = {int(str(r["time_ns"])): r["boot_time_s"] for r in found["stat"]}
        cpu = None
        if len(cpu_rows) >= 2:
            a, b = cpu_rows[-2:]
            gap = (int(str(b["time_ns"])) - int(str(a["time_ns"]))) / S
            fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
            delta = {f: int(str(b[f])) - int(str(a[f])) for f in fields}
            total = sum(delta.values())
            same_boot = boots[int(str(a["time_ns"]))] == boots[int(str(b["time_ns"]))]
            if gap <= 30 and same_boot and total > 0:
                cpu = 100 * (total - delta["idle"] - delta["iowait"]) / total
        mem = max(found["mem"], key=lambda r: int(str(r["time_ns"])))
        total_b, avail = int(str(mem["mem_total_bytes"])), int(str(mem["mem_available_bytes"]))
        load = max(found["load"], key=lambda r: int(str(r["time_ns"])))
        out[host] = {
            "state": state,
            "last_sample_ns": last,
            "cpu_percent": cpu,
            "mem_used_percent": 100 * (total_b - avail) / total_b,
            "load1": load["load1"],
        }
    return out


@pytest.fixture
def filled(store_url: str, tmp_path: Path) -> tuple[str, int, dict[str, str]]:
    now = time.time_ns()
    _fill(store_url, now)
    return store_url, now, collectbus_env(tmp_path, store_url)


def _hosts(tmp_path: Path, env: dict[str, str], *args: str) -> list[dict[str, object]]:
    done = collectbus(
        "hosts", "--interval", "10s", "--format", "json", *args, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def test_states_and_figures_equal_a_recomputation(
    filled: tuple[str, int, dict[str, str]], tmp_path: Path
) -> None:
    url, now, env = filled
    rows = _hosts(tmp_path, env)
    expected = _expected(url, now)
    assert [r["host"] for r in rows] == sorted(expected)  # every host, by name
    for row in rows:
        want = expected[str(row["host"])]
        assert row["state"] == want["state"], row
        assert row["last_sample_ns"] == want["last_sample_ns"], row
        for figure in ("cpu_percent", "mem_used_percent", "load1"):
            if want[figure] is None:
                assert row[figure] is None, (row, figure)
            else:
                assert row[figure] == pytest.approx(want[figure]), (row, figure)
    states = {str(r["host"]): r["state"] for r in rows}
    assert states == {"n01": "reporting", "n02": "reporting", "n03": "late", "n04": "silent",
                      "single": "reporting", "reboot": "reporting", "archived": "silent"}  # fmt: skip
    figures = {str(r["host"]): r["cpu_percent"] for r in rows}
    assert figures["n01"] == pytest.approx(90.0)
    assert figures["archived"] == pytest.approx(30.0)  # read from its chunks
    assert figures["single"] is None
    assert figures["reboot"] is None


def test_sort_top_and_silent_after(filled: tuple[str, int, dict[str, str]], tmp_path: Path) -> None:
    url, now, env = filled
    expected = _expected(url, now)
    busiest = sorted(
        (h for h in expected if expected[h]["cpu_percent"] is not None),
        key=lambda h: -float(str(expected[h]["cpu_percent"])),
    )
    rows = _hosts(tmp_path, env, "--sort", "cpu", "--top", "3")
    assert [r["host"] for r in rows] == busiest[:3] == ["n01", "n04", "n03"]
    rows = _hosts(tmp_path, env, "--sort", "last", "--top", "2")
    assert [r["host"] for r in rows] == ["archived", "n04"]
    rows = _hosts(tmp_path, env, "--sort", "cpu")
    assert [r["host"] for r in rows][-2:] == ["reboot", "single"]  # no figure: last, by name
    rows = _hosts(tmp_path, env, "--silent-after", "50s")
    assert {str(r["host"]): r["state"] for r in rows}["n03"] == "silent"


def test_the_interval_comes_from_the_config_file(
    filled: tuple[str, int, dict[str, str]], tmp_path: Path
) -> None:
    _url, _now, env = filled
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "collectbus.toml"  # not in the working folder: named
    config.write_text('[collectors.host]\ninterval = "1m"\n')
    done = collectbus("--config", str(config), "hosts", "--format", "csv", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    states = {line.split(",")[0]: line.split(",")[1] for line in done.stdout.splitlines()[1:]}
    assert states["n03"] == "reporting"  # 55 s: within 3 minutes
    assert states["n04"] == "late"  # 400 s: past 3 minutes, within 10
    config.write_text('[bus]\ntiers = { system = "2m" }\n')  # the host collector's tier
    done = collectbus("--config", str(config), "hosts", "--format", "csv", cwd=tmp_path, env=env)
    states = {line.split(",")[0]: line.split(",")[1] for line in done.stdout.splitlines()[1:]}
    assert states["n04"] == "late"  # 400 s: past 6 minutes, within 20
    assert states["archived"] == "silent"
    done = collectbus("hosts", cwd=tmp_path, env=env)
    assert "late after 30 s without a sample, silent after 100 s" in done.stdout
    assert "n04" in done.stdout


def test_an_empty_store_says_so(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url):
        pass
    env = collectbus_env(tmp_path, store_url)
    done = collectbus("hosts", "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0
    assert done.stdout.strip() == "[]"
    assert "no host samples" in done.stderr
    done = collectbus("hosts", cwd=tmp_path, env=env)
    assert done.returncode == 0
    assert done.stdout == ""
    assert "hint: collect some" in done.stderr
