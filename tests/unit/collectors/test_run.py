from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

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
