from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from collectbus.collectors import run
from collectbus.collectors.run import LocalRunner
from collectbus.errors import CollectError, CommandFailed, CommandTimeout


def test_output_and_exit_code() -> None:
    result = LocalRunner().run([sys.executable, "-c", "print('hello')"])
    assert result.returncode == 0
    assert result.stdout == b"hello\n"
    assert result.command.endswith("\"print('hello')\"") or "print" in result.command


def test_exit_255_is_command_failed_with_stderr_tail() -> None:
    script = "import sys; sys.stderr.write('line1\\nConnection refused\\n'); sys.exit(255)"
    with pytest.raises(CommandFailed) as info:
        LocalRunner().run([sys.executable, "-c", script])
    assert info.value.returncode == 255
    assert "Connection refused" in str(info.value)
    assert "\n" not in str(info.value)


def test_unchecked_failure_returns_result() -> None:
    result = LocalRunner().run([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert result.returncode == 3


def test_hanging_command_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {marker}; wait"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"timed out after 0\.5 s"):
        LocalRunner(timeout=0.5).run(["sh", "-c", script])
    assert time.monotonic() - started < 30  # a guard against hanging, not a timing check
    child = int(marker.read_text())
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split(") ")[1][0] == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.fail("the child of a timed-out command survived")


def test_missing_program() -> None:
    with pytest.raises(CollectError, match="command not found"):
        LocalRunner().run(["collectbus-no-such-program"])


def test_output_cap() -> None:
    with pytest.raises(CollectError, match="more than 1000 bytes"):
        LocalRunner(max_output=1000).run([sys.executable, "-c", "print('x' * 100000)"])


def test_large_output_below_cap_is_complete() -> None:
    result = LocalRunner().run(
        [sys.executable, "-c", "import sys; sys.stdout.write('y' * 5_000_000)"]
    )
    assert len(result.stdout) == 5_000_000


def test_stdin_is_passed() -> None:
    result = LocalRunner().run(
        [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"], stdin=b"abc"
    )
    assert result.stdout == b"cba\n"


def _pid_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (or is a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] == "Z"


def _kill_left_behind(marker: Path) -> None:
    """Kill the background process whose pid a test command wrote to ``marker``."""
    if marker.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(marker.read_text()), signal.SIGKILL)


def test_command_that_closes_its_output_but_runs_on_times_out(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    script = f"exec >&- 2>&-; echo $$ > {marker}; exec sleep 60"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"timed out after 1 s"):
        LocalRunner(timeout=1.0).run(["sh", "-c", script])
    assert time.monotonic() - started < 30  # a guard against hanging, not a timing check
    assert _pid_gone(int(marker.read_text()))


def test_large_stdin_to_a_command_that_never_reads_it_times_out(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        LocalRunner(timeout=1.0).run(
            ["sh", "-c", f"echo $$ > {marker}; exec sleep 60"], stdin=b"x" * (1 << 20)
        )
    assert time.monotonic() - started < 30  # a guard against hanging, not a timing check
    assert _pid_gone(int(marker.read_text()))


def test_large_stdin_echoed_while_it_is_written() -> None:
    # cat writes as it reads: stdin must be fed while stdout is drained.
    data = bytes(range(256)) * 4096  # 1 MiB
    result = LocalRunner(timeout=30).run(["cat"], stdin=data)
    assert result.stdout == data


def test_large_stdin_to_a_command_that_exits_without_reading_it() -> None:
    result = LocalRunner(timeout=30).run(["sh", "-c", "echo ok"], stdin=b"x" * (1 << 20))
    assert (result.returncode, result.stdout) == (0, b"ok\n")


def test_background_process_holding_the_pipes_does_not_turn_success_into_timeout(
    tmp_path: Path,
) -> None:
    # As ssh with ControlPersist: the command exits, its master lives on with
    # the command's stdout and stderr.
    marker = tmp_path / "pid"
    script = f"sleep 60 & echo $! > {marker}; head -c 300000 /dev/zero; echo done >&2"
    try:
        started = time.monotonic()
        result = LocalRunner(timeout=10).run(["sh", "-c", script])
        assert time.monotonic() - started < 10  # a guard against hanging, not a timing check
        assert result.returncode == 0
        assert result.stdout == bytes(300000)
        assert result.stderr_tail == "done\n"
        assert not _pid_gone(int(marker.read_text()))  # left alone: it is not a timeout
    finally:
        _kill_left_behind(marker)


def test_background_process_holding_stderr_keeps_the_failure_and_its_tail(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pid"
    script = f"sleep 60 >/dev/null & echo $! > {marker}; echo 'Connection refused' >&2; exit 255"
    try:
        with pytest.raises(CommandFailed, match="Connection refused") as info:
            LocalRunner(timeout=10).run(["sh", "-c", script])
        assert info.value.returncode == 255
    finally:
        _kill_left_behind(marker)


def test_without_pidfd_the_exit_is_polled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run, "_exit_fd", lambda pid: -1)  # as before Linux 5.3
    marker = tmp_path / "pid"
    try:
        result = LocalRunner(timeout=10).run(
            ["sh", "-c", f"sleep 60 & echo $! > {marker}; echo ok"]
        )
        assert result.stdout == b"ok\n"
    finally:
        _kill_left_behind(marker)
    with pytest.raises(CommandTimeout):
        LocalRunner(timeout=0.5).run(["sh", "-c", "exec >&- 2>&-; exec sleep 60"])
