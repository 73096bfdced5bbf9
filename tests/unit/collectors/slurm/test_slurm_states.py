"""State, reason, exit code, duration and hostlist decoding."""

from __future__ import annotations

import pytest

from collectbus.collectors.slurm.states import (
    decode_exit_pair,
    decode_wait_status,
    duration_seconds,
    expand_hostlist,
    job_state,
    memory_bytes,
    node_state,
)
from collectbus.records import JOB_STATES


@pytest.mark.parametrize(
    ("native", "reason", "state"),
    [
        ("PENDING", "Priority", "queued"),
        ("PENDING", "Resources", "queued"),
        ("PENDING", "JobHeldUser", "held"),
        ("PENDING", "JobHeldAdmin", "held"),
        ("REQUEUE_HOLD", None, "held"),
        ("RUNNING", None, "running"),
        ("COMPLETING", None, "running"),
        ("CONFIGURING", None, "running"),
        ("SUSPENDED", None, "suspended"),
        ("COMPLETED", None, "completed"),
        ("FAILED", "NonZeroExitCode", "failed"),
        ("NODE_FAIL", None, "failed"),
        ("OUT_OF_MEMORY", None, "failed"),
        ("BOOT_FAIL", None, "failed"),
        ("TIMEOUT", "TimeLimit", "timeout"),
        ("DEADLINE", None, "timeout"),
        ("CANCELLED", None, "cancelled"),
        ("CANCELLED by 0", None, "cancelled"),
        ("PREEMPTED", None, "cancelled"),
        ("SOMETHING_NEW", None, "unknown"),
        ("", None, "unknown"),
    ],
)
def test_job_states(native: str, reason: str | None, state: str) -> None:
    assert job_state(native, reason) == state
    assert state in JOB_STATES


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (0, (0, None)),
        (768, (3, None)),
        (256, (1, None)),
        (15, (None, 15)),
        (9, (None, 9)),
        (65280, (255, None)),
    ],
)
def test_wait_status(raw: int, decoded: tuple[int | None, int | None]) -> None:
    assert decode_wait_status(raw) == decoded


def test_exit_pair() -> None:
    assert decode_exit_pair("3:0") == (3, None)
    assert decode_exit_pair("0:9") == (None, 9)
    assert decode_exit_pair("") == (None, None)


@pytest.mark.parametrize(
    ("base", "flags", "state"),
    [
        ("idle", (), "idle"),
        ("mixed", (), "mixed"),
        ("allocated", (), "allocated"),
        ("idle", ("DRAIN",), "drained"),
        ("allocated", ("DRAIN",), "drained"),
        ("idle", ("NOT_RESPONDING",), "down"),
        ("down", (), "down"),
        ("idle", ("POWERED_DOWN",), "offline"),
        ("idle", ("MAINTENANCE",), "reserved"),
        ("future", (), "offline"),
        ("weird", (), "unknown"),
    ],
)
def test_node_states(base: str, flags: tuple[str, ...], state: str) -> None:
    assert node_state(base, flags) == state


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1", 60),
        ("1:00", 60),
        ("1:15", 75),
        ("01:00:00", 3600),
        ("2-00:00:00", 172800),
        ("2-03", 183600),
        ("UNLIMITED", None),
        ("NONE", None),
        ("", None),
    ],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert duration_seconds(text) == seconds


def test_memory() -> None:
    assert memory_bytes("1000M") == 1000 << 20
    assert memory_bytes("2G") == 2 << 30
    assert memory_bytes("500") == 500 << 20
    assert memory_bytes("lots") is None


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("localhost", ("localhost",)),
        ("node[01-03,7]", ("node01", "node02", "node03", "node7")),
        ("a[1-2],b", ("a1", "a2", "b")),
        ("rack[1-2]-n[1-2]", ("rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2")),
        ("None assigned", ()),
        ("", ()),
    ],
)
def test_hostlists(text: str, hosts: tuple[str, ...]) -> None:
    assert expand_hostlist(text) == hosts
