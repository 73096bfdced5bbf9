"""The ``[collectors.pbs]`` section, the entry points, and the daemon's wiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectbus import plugins
from collectbus.clock import FakeClock
from collectbus.collectors.pbs.collector import (
    PbsJobsCollector,
    PbsNodesCollector,
    PbsQueuesCollector,
    PbsServerCollector,
)
from collectbus.collectors.pbs.reservations import PbsReservationsCollector
from collectbus.collectors.run import LocalRunner
from collectbus.config import load_config
from collectbus.errors import ConfigError
from collectbus.pipeline import Pipeline, scheduler_collectors
from collectbus.store import open as open_store

README = Path(__file__).resolve().parents[4] / "src/collectbus/collectors/pbs/README.md"


def _load(tmp_path: Path, toml: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    return load_config(path, env={})


def test_pbs_is_off_by_default_with_per_entity_intervals(tmp_path: Path) -> None:
    config = _load(tmp_path, "")
    pbs = config.collectors.pbs  # type: ignore[attr-defined]
    assert pbs.enabled is False
    assert (pbs.intervals.jobs, pbs.intervals.nodes) == (60.0, 300.0)
    assert (pbs.intervals.queues, pbs.intervals.server) == (900.0, 900.0)
    assert pbs.history is False
    assert pbs.timezone is None


def test_the_readme_sample_config_loads(tmp_path: Path) -> None:
    text = README.read_text()
    sample = text.split("```toml\n", 1)[1].split("```", 1)[0]
    pbs = _load(tmp_path, sample).collectors.pbs  # type: ignore[attr-defined]
    assert pbs.enabled
    assert pbs.ssh_host == "login1.example.org"
    assert pbs.timezone == "America/Chicago"
    assert pbs.intervals.jobs == 60.0
    assert pbs.intervals.nodes == 300.0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[collectors.pbs]\ntimezone = "Mars/Olympus"',
            r"collectors\.pbs\.timezone: unknown time zone",
        ),
        ("[collectors.pbs.intervals]\njobs = 0", r"collectors\.pbs\.intervals\.jobs: .*positive"),
        ("[collectors.pbs]\nhistroy = true", r"collectors\.pbs\.histroy: unknown key"),
        (
            '[collectors.pbs]\nenabled = true\ntier = "weekly"',
            r"collectors\.pbs\.tier: unknown tier",
        ),
        (
            '[collectors.pbs]\ntimeout = "soon"',
            r"collectors\.pbs\.timeout: 'soon' is not a duration",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, toml)


def test_the_five_collectors_are_registered() -> None:
    factories = plugins.collector_factories()
    assert factories["pbs-reservations"] is PbsReservationsCollector
    assert factories["pbs-jobs"] is PbsJobsCollector
    assert factories["pbs-nodes"] is PbsNodesCollector
    assert factories["pbs-queues"] is PbsQueuesCollector
    assert factories["pbs-server"] is PbsServerCollector


def test_the_pipeline_puts_each_entity_on_the_bus_at_its_interval(tmp_path: Path) -> None:
    toml = (
        "[collectors.host]\nenabled = false\n[collectors.host_inventory]\nenabled = false\n"
        '[collectors.pbs]\nenabled = true\nserver = "pbs1"\nhistory = true\ntimeout = "20s"\n'
        '[collectors.pbs.intervals]\njobs = "30s"\n'
    )
    config = _load(tmp_path, toml)
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipeline = Pipeline(config, clock=FakeClock(), store=store)  # type: ignore[arg-type]
    try:
        health = {c.name: c for c in pipeline.bus.health().collectors}
        assert sorted(health) == [
            "pbs-jobs", "pbs-nodes", "pbs-queues", "pbs-reservations", "pbs-server"
        ]  # fmt: skip
        assert (health["pbs-jobs"].interval_s, health["pbs-nodes"].interval_s) == (30.0, 300.0)
        assert health["pbs-reservations"].interval_s == 300.0
        assert health["pbs-reservations"].tier == "inventory"
        assert health["pbs-server"].interval_s == 900.0
        assert health["pbs-jobs"].timeout_s == 30.0  # the command's 20 s, and a margin
        assert health["pbs-jobs"].tier == "inventory"
    finally:
        pipeline.stop()


def test_the_collectors_run_their_commands_through_a_given_runner(tmp_path: Path) -> None:
    config = _load(tmp_path, '[collectors.pbs]\nenabled = true\ntimeout = "20s"\n')
    runner = LocalRunner(timeout=5.0)
    given = scheduler_collectors(config, runner=runner)  # type: ignore[arg-type]
    assert [getattr(e.collector, "runner", None) for e in given] == [runner] * 5
    default = scheduler_collectors(config)  # type: ignore[arg-type]
    runners = [getattr(e.collector, "runner", None) for e in default]
    assert all(isinstance(r, LocalRunner) and r.timeout == 20.0 for r in runners)
