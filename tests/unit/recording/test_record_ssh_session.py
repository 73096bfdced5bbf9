"""The SSH session protocol, run for real through an ssh stand-in and the local sh."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_loadavg,
    parse_meminfo,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
)
from collectbus.errors import CollectError, ParseError
from collectbus.recording.remote import split_frames
from collectbus.recording.ssh import SshHostCollector, SshOptions, SshSession

from .conftest import FC


def _opts(tmp_path: Path, fake_ssh: Path, proc_root: Path, python: bool = True) -> SshOptions:
    return SshOptions(
        control_dir=str(tmp_path), command=str(fake_ssh), proc_root=str(proc_root), python=python
    )


LOOPS = pytest.mark.parametrize("python", [True, False], ids=["python3-loop", "sh-loop"])


@LOOPS
def test_a_sample_over_the_session_equals_the_pure_parsers(
    tmp_path: Path, fake_ssh: Path, proc_root: Path, python: bool
) -> None:
    opts = _opts(tmp_path, fake_ssh, proc_root, python)
    collector = SshHostCollector("node1", opts, timeout_s=10)
    try:
        first = collector.collect(CollectContext(host="here"))[0]
        second = collector.collect(CollectContext(host="here"))[0]
        # The stand-in execs the remote command: the session process is the loop itself.
        argv0 = Path(f"/proc/{collector.session.pid}/cmdline").read_bytes().split(b"\0")[0]
        assert (b"python3" in argv0) == python
    finally:
        collector.close()
    cpu, stat = parse_stat((FC / "stat").read_bytes())
    for sample in (first, second):
        assert sample.host == "node1"
        assert sample.errors == ()
        assert sample.cpu == cpu
        assert sample.stat == stat
        assert sample.mem == parse_meminfo((FC / "meminfo").read_bytes())
        assert sample.vmstat == parse_vmstat((FC / "vmstat").read_bytes())
        assert sample.disk == parse_diskstats((FC / "diskstats").read_bytes())
        assert sample.net == parse_net_dev((FC / "net_dev").read_bytes())
        assert sample.load == parse_loadavg((FC / "loadavg").read_bytes())
    assert second.time_ns >= first.time_ns
    assert collector.reconnects == 0


@LOOPS
def test_a_malformed_and_a_missing_file_are_named_and_the_rest_is_kept(
    tmp_path: Path, fake_ssh: Path, proc_root: Path, python: bool
) -> None:
    edge = FC.parent / "edge"
    (proc_root / "meminfo").write_bytes((edge / "meminfo_malformed").read_bytes())
    (proc_root / "loadavg").unlink()
    opts = _opts(tmp_path, fake_ssh, proc_root, python)
    collector = SshHostCollector("node1", opts, timeout_s=10)
    ctx = CollectContext(host="here")
    try:
        (sample,) = collector.collect(ctx)
    finally:
        collector.close()
    assert sample.mem is None
    assert sample.load is None
    assert sample.cpu
    assert sample.disk
    assert sample.net
    assert sample.vmstat
    assert len(sample.errors) == 2
    meminfo_error, loadavg_error = sample.errors
    assert meminfo_error.startswith(f"node1:{proc_root}/meminfo:")
    assert loadavg_error == f"node1:{proc_root}/loadavg: empty or unreadable"
    assert [str(p) for p in ctx.problems] == list(sample.errors)


def test_a_host_that_never_answers_fails_its_round_with_its_name(
    tmp_path: Path, fake_ssh: Path, proc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SSH_HANG", "1")
    collector = SshHostCollector(
        "slow", _opts(tmp_path, fake_ssh, proc_root), timeout_s=0.3, backoff_initial_s=60
    )
    try:
        with pytest.raises(CollectError, match=r"^slow: no answer in time while connecting$"):
            collector.collect(CollectContext(host="here"))
        assert not collector.session.alive  # killed, not left behind
        # The first retry is at the next round; after that the wait doubles.
        with pytest.raises(CollectError, match=r"^slow: no answer in time"):
            collector.collect(CollectContext(host="here"))
        with pytest.raises(CollectError, match=r"^slow: not connected, next attempt in \d+\.\d s"):
            collector.collect(CollectContext(host="here"))
    finally:
        collector.close()
    assert collector.failures == 2  # a round inside the wait is not an attempt


def test_a_session_that_died_between_rounds_is_reconnected(
    tmp_path: Path, fake_ssh: Path, proc_root: Path
) -> None:
    collector = SshHostCollector("node1", _opts(tmp_path, fake_ssh, proc_root), timeout_s=10)
    try:
        assert collector.collect(CollectContext(host="here"))[0].errors == ()
        pid = collector.session.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        (sample,) = collector.collect(CollectContext(host="here"))
    finally:
        collector.close()
    assert sample.errors == ()
    assert collector.reconnects == 1
    assert collector.session.pid != pid


def test_a_session_that_ends_fails_the_round_naming_the_host(
    tmp_path: Path, fake_ssh: Path, proc_root: Path
) -> None:
    session = SshSession("node1", _opts(tmp_path, fake_ssh, proc_root))
    session.open(time.monotonic_ns() + 10 * 10**9)
    pid = session.pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    try:
        with pytest.raises(CollectError, match=r"^node1: session (closed|ended)"):
            session.sample(time.monotonic_ns() + 10 * 10**9)
    finally:
        session.kill()


def test_a_missing_ssh_program_is_one_line_naming_the_host(tmp_path: Path, proc_root: Path) -> None:
    opts = SshOptions(control_dir=str(tmp_path), command=str(tmp_path / "no-such-ssh"))
    session = SshSession("node1", opts)
    with pytest.raises(CollectError, match=r"^node1: cannot run .*no-such-ssh: No such file"):
        session.open(10**18)


def test_split_frames_rejects_output_before_the_first_marker() -> None:
    token = "0123456789abcdef"
    assert split_frames(f"\n{token} stat\ncpu 1\n".encode(), token, "h") == {"stat": b"cpu 1\n"}
    with pytest.raises(ParseError, match=r"^h:1: output before the first file marker"):
        split_frames(f"motd\n{token} stat\ncpu 1\n".encode(), token, "h")
