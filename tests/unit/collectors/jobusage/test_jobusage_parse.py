"""The job usage parsers: jobs from cgroup paths and environments, v1 blkio,
process lists and the /proc files of one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectbus.collectors.jobusage.parse import (
    JobPath,
    job_from_environ,
    job_in_path,
    jobs_in_proc_cgroup,
    parse_blkio_bytes,
    parse_pids,
    parse_proc_io,
    parse_proc_stat,
)
from collectbus.errors import ParseError

RECORDED = Path(__file__).resolve().parents[3] / "data" / "cgroup" / "slurm-v1-job"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Slurm, cgroup v1 (recorded: slurm_<node> when slurmd runs with -N).
        (
            "/slurm_localhost/uid_0/job_2/step_batch",
            JobPath("slurm", "2", "/slurm_localhost/uid_0/job_2"),
        ),
        ("/slurm/uid_1000/job_123", JobPath("slurm", "123", "/slurm/uid_1000/job_123")),
        # Slurm, cgroup v2.
        (
            "/system.slice/slurmstepd.scope/job_77/step_0/user/task_1",
            JobPath("slurm", "77", "/system.slice/slurmstepd.scope/job_77"),
        ),
        # PBS cgroups hook, both folder names; array subjob ids keep their brackets.
        (
            "/pbs_jobs.service/jobid/1234.pbs01",
            JobPath("pbs", "1234.pbs01", "/pbs_jobs.service/jobid/1234.pbs01"),
        ),
        (
            "pbs_jobs.service/jobs/9[3].srv/x",
            JobPath("pbs", "9[3].srv", "/pbs_jobs.service/jobs/9[3].srv"),
        ),
        # Not jobs.
        ("/", None),
        ("/user.slice/user-0.slice", None),
        ("/slurm_localhost/uid_0", None),
        ("/slurm/uid_0/job_", None),
        ("/slurm/uid_0/job_12a", None),
        ("/other/uid_0/job_5", None),  # a uid_ folder outside Slurm's
        ("/system.slice/slurmstepd.scope/system", None),
        ("/pbs_jobs.service/jobid", None),
        ("/pbs_jobs.service/other/1.x", None),
    ],
)
def test_job_in_path(path: str, expected: JobPath | None) -> None:
    assert job_in_path(path) == expected


def test_recorded_proc_cgroup_names_the_slurm_job() -> None:
    data = (RECORDED / "proc" / "26089" / "cgroup").read_bytes()
    assert jobs_in_proc_cgroup(data) == JobPath("slurm", "2", "/slurm_localhost/uid_0/job_2")


def test_proc_cgroup_outside_any_job() -> None:
    assert jobs_in_proc_cgroup(b"0::/user.slice/session-1.scope\n1:cpu:/\n") is None
    assert jobs_in_proc_cgroup(b"garbage without colons\n\xff\xfe") is None


def test_recorded_environ_names_the_slurm_job() -> None:
    data = (RECORDED / "proc" / "26089" / "environ").read_bytes()
    assert job_from_environ(data) == ("slurm", "2")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"HOME=/root\0PBS_JOBID=1234.pbs01\0PATH=/bin\0", ("pbs", "1234.pbs01")),
        (b"SLURM_JOB_ID=55\0PBS_JOBID=1.x\0", ("slurm", "55")),
        (b"SLURM_JOB_IDX=55\0SLURM_JOB_ID=\0", None),  # another name; an empty value
        (b"", None),
    ],
)
def test_job_from_environ(data: bytes, expected: tuple[str, str] | None) -> None:
    assert job_from_environ(data) == expected


def test_recorded_cgroup_procs() -> None:
    path = RECORDED / "sys/fs/cgroup/freezer/slurm_localhost/uid_0/job_2/step_batch/cgroup.procs"
    assert parse_pids(path.read_bytes(), str(path)) == [26089, 26360]
    assert parse_pids(b"", "empty") == []


def test_garbage_pid_names_file_and_line() -> None:
    with pytest.raises(ParseError, match=r"cgroup\.procs:2: not a process id: '12x'"):
        parse_pids(b"1\n12x\n", "cgroup.procs")


def test_blkio_sums_reads_and_writes_over_devices() -> None:
    path = Path(__file__).resolve().parents[3] / "data/cgroup/pbs-v1-job/sys/fs/cgroup/blkio"
    data = (path / "pbs_jobs.service/jobid/1234.pbs01/blkio.throttle.io_service_bytes").read_bytes()
    assert parse_blkio_bytes(data, "blkio") == (3145728 + 1024, 1048576 + 2048)


def test_blkio_huge_value_is_none_and_named() -> None:
    replaced: list[str] = []
    data = b"8:0 Read 18446744073709551615\n8:0 Write 10\nTotal 10\n"
    assert parse_blkio_bytes(data, "x/blkio.throttle.io_service_bytes", replaced) == (None, 10)
    assert replaced == ["cgroup.blkio.throttle.io_service_bytes.read"]


def test_blkio_garbage_names_the_line() -> None:
    with pytest.raises(ParseError, match=r"blkio:1: expected 'MAJ:MIN Op bytes'"):
        parse_blkio_bytes(b"Read 5\n", "blkio")
    with pytest.raises(ParseError, match=r"blkio:1: not an integer"):
        parse_blkio_bytes(b"8:0 Read five\n", "blkio")


def test_recorded_proc_stat() -> None:
    # slurm_script: utime 0, stime 0, cutime 858, cstime 19 (its busy child, reaped).
    stat = parse_proc_stat((RECORDED / "proc/26089/stat").read_bytes(), "stat")
    assert stat.cpu_ticks == 858 + 19
    assert stat.start_ticks == 149055
    assert stat.rss_pages == 394


def test_proc_stat_command_with_spaces_and_parentheses() -> None:
    line = b"7 (a ) b) S 1 7 7 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 4242 100 33 0\n"
    stat = parse_proc_stat(line, "stat")
    assert (stat.cpu_ticks, stat.start_ticks, stat.rss_pages) == (26, 4242, 33)


def test_proc_stat_huge_and_garbage() -> None:
    replaced: list[str] = []
    huge = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 18446744073709551616 6 7 8 20 0 1 0 4242 100 -1 0\n"
    stat = parse_proc_stat(huge, "p/stat", replaced)
    assert (stat.cpu_ticks, stat.rss_pages) == (None, None)
    assert replaced == ["p/stat.cpu_ticks", "p/stat.rss"]
    with pytest.raises(ParseError, match=r"p/stat:1: not a /proc/PID/stat line"):
        parse_proc_stat(b"7 (x) S 1 2\n", "p/stat")
    with pytest.raises(ParseError, match=r"p/stat:1: not an integer"):
        parse_proc_stat(huge.replace(b" 6 7 8 ", b" six 7 8 "), "p/stat")


def test_recorded_proc_io() -> None:
    data = (RECORDED / "proc/26089/io").read_bytes()
    read, write = parse_proc_io(data, "io")
    assert read is not None
    assert write is not None
    assert data.count(b"read_bytes: %d\n" % read) == 1
    assert data.count(b"\nwrite_bytes: %d\n" % write) == 1


def test_proc_io_missing_key_and_garbage() -> None:
    with pytest.raises(ParseError, match=r"io: no write_bytes"):
        parse_proc_io(b"rchar: 1\nread_bytes: 2\n", "io")
    with pytest.raises(ParseError, match=r"io:2: not an integer"):
        parse_proc_io(b"rchar: 1\nread_bytes: lots\nwrite_bytes: 2\n", "io")
