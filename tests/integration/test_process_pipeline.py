"""``[collectors.processes]`` in the pipeline: on its own tier, on the bus, logged in the store."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import sqlalchemy as sa

from collectbus.clock import FakeClock
from collectbus.config import load_config
from collectbus.pipeline import Pipeline
from collectbus.records import ProcessSample

PIDS = Path(__file__).resolve().parents[1] / "data" / "procfs" / "pids-6.18"


def test_enabled_processes_run_on_their_tier_and_only_their_log_is_stored(
    tmp_path: Path,
) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(PIDS / "t0", proc)
    config_file = tmp_path / "collectbus.toml"
    config_file.write_text(
        "[collectors.host]\nenabled = false\n[collectors.host_inventory]\nenabled = false\n"
        '[collectors.processes]\nenabled = true\ntier = "fast"\ntop = 2\n'
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    config = load_config(
        config_file,
        overrides={"store.url": url, "collectors.host.proc_root": str(proc)},
        env={},
    )
    pipeline = Pipeline(config, clock=FakeClock(start_ns=time.time_ns()))  # inside retention
    watcher = pipeline.bus.subscribe(name="watcher", collectors=["processes"])
    try:
        result = pipeline.bus.collect_now("processes")
        assert result.event.status == "ok"
        (sample,) = result.records
        assert isinstance(sample, ProcessSample)
        assert len([r for r in sample.processes if r.mem_rank]) == 2
        assert watcher.get(timeout=10) is result
        row = pipeline.bus.health().collector("processes")
        assert (row.tier, row.interval_s) == ("fast", 1.0)
        give_up = time.monotonic() + 10
        while pipeline.sink.written_collections < 1 and time.monotonic() < give_up:
            time.sleep(0.01)  # the store subscriber writes on its own thread
        assert pipeline.sink.written_collections == 1, pipeline.store.url
    finally:
        pipeline.stop()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT source, status FROM collection_log")).all()
    engine.dispose()
    assert [tuple(r) for r in logged] == [("processes", "ok")]
