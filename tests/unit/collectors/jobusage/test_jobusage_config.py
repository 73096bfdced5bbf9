"""``[collectors.jobusage]``: validated, wired into the pipeline, and
``collectbus collect jobusage`` replaying a recorded tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collectbus.cli.main import cli
from collectbus.config import load_config
from collectbus.errors import ConfigError
from collectbus.pipeline import jobusage_collector_options

DATA = Path(__file__).resolve().parents[3] / "data" / "cgroup"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collectbus.toml"
    path.write_text(text)
    return path


def test_enabled_needs_a_cluster(tmp_path: Path) -> None:
    path = _config(tmp_path, "[collectors.jobusage]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"collectors\.jobusage.*cluster"):
        load_config(path, env={})


def test_unknown_tier_is_refused(tmp_path: Path) -> None:
    path = _config(
        tmp_path, '[collectors.jobusage]\nenabled = true\ncluster = "c"\ntier = "never"\n'
    )
    with pytest.raises(ConfigError, match=r"collectors\.jobusage\.tier: unknown tier 'never'"):
        load_config(path, env={})


def test_options_take_procfs_from_the_host_section(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        '[collectors.host]\nproc_root = "/host/proc"\n'
        '[collectors.jobusage]\nenabled = true\ncluster = "hpc1"\nmode = "proctree"\n'
        'cgroup_root = "/host/cgroup"\n',
    )
    options = jobusage_collector_options(load_config(path, env={}))
    assert options == {
        "cluster": "hpc1",
        "mode": "proctree",
        "proc_root": "/host/proc",
        "cgroup_root": "/host/cgroup",
    }


def test_options_without_a_cluster_say_so(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, ""), env={})
    with pytest.raises(ConfigError, match=r"collectors\.jobusage\.cluster: not set"):
        jobusage_collector_options(config)


def test_collect_jobusage_replays_a_recorded_tree(tmp_path: Path) -> None:
    tree = DATA / "slurm-v1-job"
    args = ["--config", str(_config(tmp_path, "")), "--proc-root", str(tree / "proc")]
    args += ["collect", "jobusage", "--cluster", "hpc1", "--format", "json"]
    args += ["--cgroup-root", str(tree / "sys/fs/cgroup")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("{")]
    sample = json.loads(line)
    usage = tree / "sys/fs/cgroup/cpuacct/slurm_localhost/uid_0/job_2/cpuacct.usage"
    assert sample["type"] == "JobUsageSample"
    assert (sample["cluster"], sample["job_id"], sample["source"]) == ("hpc1", "2", "cgroup")
    assert sample["cpu_seconds"] == pytest.approx(int(usage.read_text()) / 1e9)
    assert "jobs: 1" in result.stderr


def test_collect_jobusage_without_a_cluster_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(_config(tmp_path, "")), "collect", "jobusage"]
    )
    assert result.exit_code == 2
    assert "--cluster NAME" in result.output
