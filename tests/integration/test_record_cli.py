"""collectbus record -- CMD, as a user runs it, a real database: the exit code and the
signals passed on in a real subprocess; the other cases run the command line in this
process."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from collectbus.store import open as open_store
from tests.integration.cli_helpers import (
    collectbus,
    collectbus_env,
    collectbus_in_process,
    start_collectbus,
)


def _result(folder: Path) -> dict[str, object]:
    (path,) = folder.glob("timeseries-*.json")
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


def test_exit_code_passes_through_and_the_result_is_stored(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = collectbus(
        "record", "--interval=0.2s", f"--out={out}", "--", "sh", "-c", "exit 7",
        cwd=tmp_path, env=collectbus_env(tmp_path, store_url),
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    doc = _result(out)
    assert doc["num_samples"] >= 1  # type: ignore[operator]
    assert doc["collection_method"] == "local"
    (host,) = doc["hosts_requested"]  # type: ignore[misc]
    assert doc["hosts_collected"] == [host]
    samples = doc["samples_by_host"][host]  # type: ignore[index]
    assert samples[0]["hostname"] == host
    assert {"timestamp", "diskstats", "vmstat", "meminfo", "loadavg", "netdev", "cpu"} <= set(
        samples[0]
    )
    assert doc["collectbus"]["command"] == ["sh", "-c", "exit 7"]  # type: ignore[index]
    assert doc["collectbus"]["exit_code"] == 7  # type: ignore[index]
    store = open_store(store_url, migrate=False)
    try:
        cpu = store.read_host("cpu", host=host)
        log = store.collection_log()
    finally:
        store.close()
    assert len(set(cpu["time_ns"].tolist())) == len(samples)
    assert [row["host"] for row in log] == [host] * len(samples)
    assert {row["status"] for row in log} == {"ok"}


def test_no_store_writes_no_database_and_the_configured_name_is_used(tmp_path: Path) -> None:
    db = tmp_path / "cb.db"
    env = collectbus_env(tmp_path, f"sqlite:///{db}")
    env["COLLECTBUS_HOST"] = "bench-client-7"
    done = collectbus_in_process(
        "record", "--no-store", f"--out={tmp_path}", "--", "true", cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    doc = _result(tmp_path)
    assert doc["num_samples"] >= 1  # type: ignore[operator]
    assert doc["hosts_requested"] == ["bench-client-7"]
    assert doc["hosts_collected"] == ["bench-client-7"]
    assert doc["collection_method"] == "local"
    assert not db.exists()


def test_the_cap_keeps_the_newest_samples_and_counts_the_rest(tmp_path: Path) -> None:
    done = collectbus_in_process(
        "record", "--no-store", "--interval=0.05s", "--max-samples=2", f"--out={tmp_path}",
        "--", sys.executable, "-c", "import time; time.sleep(0.5)",
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = _result(tmp_path)
    (host,) = doc["hosts_requested"]  # type: ignore[misc]
    kept = doc["samples_by_host"][host]  # type: ignore[index]
    assert len(kept) == 2
    dropped = doc["collectbus"]["dropped_by_host"][host]  # type: ignore[index]
    assert dropped >= 1
    assert doc["collectbus"]["dropped_samples"] == dropped  # type: ignore[index]
    # The newest were kept: they end at the end of the recording.
    end_ns = doc["collectbus"]["end_time_ns"]  # type: ignore[index]
    start_ns = doc["collectbus"]["start_time_ns"]  # type: ignore[index]
    assert kept[-1]["time_ns"] - start_ns > (end_ns - start_ns) / 2
    assert "oldest dropped" in done.stderr


CHILD = (
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *_: sys.exit(42))\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(43))\n"
    "pathlib.Path('started').touch()\n"
    "time.sleep(60)\n"
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 42), (signal.SIGTERM, 43)])
def test_a_signal_is_passed_on_and_the_result_still_written(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    started = tmp_path / "started"
    proc = start_collectbus(
        "record", "--no-store", "--interval=0.1s", f"--out={tmp_path}",
        "--", sys.executable, "-c", CHILD,
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert started.exists(), proc.stderr.read() if proc.stderr else ""
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr
    assert f"passed {sig.name} on to {sys.executable}" in stderr
    doc = _result(tmp_path)
    assert doc["collectbus"]["exit_code"] == code  # type: ignore[index]
    assert doc["num_samples"] >= 1  # type: ignore[operator]


def test_a_command_that_cannot_run_exits_127_with_a_result(tmp_path: Path) -> None:
    done = collectbus_in_process(
        "record", "--no-store", f"--out={tmp_path}", "--", "no-such-program-xyz",
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    assert done.returncode == 127
    assert "collectbus: error: no-such-program-xyz: cannot run: No such file" in done.stderr
    assert _result(tmp_path)["collectbus"]["exit_code"] == 127  # type: ignore[index]


def test_a_bad_host_list_is_one_line_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = collectbus_in_process(
        "record", f"--hosts=@{tmp_path / 'missing'}", "--", "touch", str(marker),
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"collectbus: error: {tmp_path / 'missing'}: cannot read the host list: "
        "No such file or directory"
    )
    assert not marker.exists()
    assert not list(tmp_path.glob("timeseries-*.json"))


def test_without_a_command_it_is_a_usage_error(tmp_path: Path) -> None:
    done = collectbus_in_process(
        "record", cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    )
    assert done.returncode == 2
    assert done.stderr.startswith("collectbus: error: record: missing argument -- CMD")


@pytest.mark.parametrize("interval", ["0s", "soon"])
def test_a_bad_interval_is_a_usage_error(tmp_path: Path, interval: str) -> None:
    done = collectbus_in_process(
        "record", f"--interval={interval}", "--", "true",
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "--interval" in done.stderr


def test_an_ssh_option_without_a_value_is_a_usage_error(tmp_path: Path) -> None:
    done = collectbus_in_process(
        "record", "--hosts=node1", "--ssh-option=Port", "--", "true",
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "'Port' is not KEY=VALUE" in done.stderr


def test_an_unwritable_out_folder_is_refused_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "results"  # under a regular file: no folder can be made
    done = collectbus(
        "record", f"--out={out}", "--", "touch", str(marker),
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"collectbus: error: --out {out}: cannot write there: Not a directory"
    ]
    assert not marker.exists()


def test_a_folder_lost_during_the_run_gets_a_fallback_file_and_the_exit_code(
    store_url: str, tmp_path: Path
) -> None:
    # CMD replaces the --out folder with a file: the write at the end fails.
    out, spare = tmp_path / "results", tmp_path / "tmp"
    spare.mkdir()
    env = collectbus_env(tmp_path, store_url)
    env["TMPDIR"] = str(spare)
    done = collectbus(
        "record", "--interval=0.2s", f"--out={out}", "--",
        "sh", "-c", f"rmdir {out} && touch {out} && exit 3",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    (fallback,) = spare.glob("timeseries-*.json")
    assert f"collectbus: error: {out / fallback.name}: cannot write the result" in done.stderr
    assert f"collectbus: wrote the result to {fallback} instead" in done.stderr
    assert "collectbus: stored in " in done.stderr  # the samples are in the store too
    assert json.loads(fallback.read_text())["collectbus"]["exit_code"] == 3


def test_disk_filters_and_every_disk_by_default(tmp_path: Path) -> None:
    from tests.unit.recording.conftest import FC, build_proc_root

    proc = build_proc_root(tmp_path / "proc")
    config = tmp_path / "collectbus.toml"
    config.write_text(f'[collectors.host]\nproc_root = "{proc}"\n')
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    env["COLLECTBUS_CONFIG"] = str(config)
    every = [line.split()[2] for line in (FC / "diskstats").read_text().splitlines()]
    for name, filters, expected in (
        ("all", (), every),
        ("some", ("--disk-exclude=^loop", "--disk-exclude=^zram"), ["vda"]),
    ):
        out = tmp_path / name
        done = collectbus_in_process(
            "record", "--no-store", f"--out={out}", *filters, "--", "true", cwd=tmp_path, env=env
        )
        assert done.returncode == 0, done.stderr
        doc = _result(out)
        (host,) = doc["samples_by_host"]  # type: ignore[union-attr]
        sample = doc["samples_by_host"][host][0]  # type: ignore[index]
        assert [d["device_name"] for d in sample["diskstats"]] == expected
    bad = collectbus_in_process(
        "record", "--no-store", "--disk-include=(vd", "--", "true", cwd=tmp_path, env=env
    )
    assert bad.returncode == 2
    assert "--disk-include" in bad.stderr
    assert "(vd" in bad.stderr
