"""One job's record joined to its samples (``analysis.jobusage.job_usage``).

The jobs are stored by the job tracker as the daemon stores them; the
samples by the store's writer. Each expected figure is worked out from the
samples the test wrote, not read back from the function.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collectbus.analysis.jobs import job_usage
from collectbus.analysis.jobusage import cores_to_ask, host_matches, memory_to_ask, verdicts
from collectbus.errors import CollectBusError
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord, JobUsageSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

S = 10**9
GIB = 2**30
T0 = 1_800_000_000 * S
CLUSTER = "hpc1"


def _job(job_id: str, **fields: object) -> JobRecord:
    base: dict[str, object] = {
        "cluster": CLUSTER,
        "scheduler": "slurm",
        "job_id": job_id,
        "submit_ns": T0 - 60 * S,
        "observed_ns": T0 + 1000 * S,
        "state": "completed",
        "native_state": "COMPLETED",
        "user": "ann",
        "account": "proj",
        "queue": "batch",
        "exec_hosts": ("n1", "n2"),
        "nodes_requested": 2,
        "cpus_requested": 8,
        "mem_requested_bytes": 16 * GIB,
        "walltime_requested_seconds": 3600,
        "start_ns": T0,
        "end_ns": T0 + 100 * S,
    }
    base.update(fields)
    return JobRecord(**base)  # type: ignore[arg-type]


def _sample(
    job_id: str, host: str, t_s: int, cpu: float | None, mem: int | None, **kw: object
) -> JobUsageSample:
    return JobUsageSample(
        cluster=CLUSTER, job_id=job_id, host=host, time_ns=T0 + t_s * S, source="cgroup",
        cpu_seconds=cpu, mem_bytes=mem, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    yield s
    s.close()


def _track(store: Store, *records: JobRecord) -> None:
    TrackedStore(store).apply(records, complete=False)


def test_figures_per_node_and_total_from_the_samples_in_the_window(store: Store) -> None:
    _track(store, _job("10"))
    store.write(
        [
            # Before the start: another job of that id long ago, left out.
            _sample("10", "n1", -500, 900.0, 9 * GIB),
            _sample("10", "n1", 10, 30.0, 1 * GIB, mem_peak_bytes=1 * GIB, read_bytes=100),
            _sample("10", "n1", 50, 150.0, 2 * GIB, mem_peak_bytes=3 * GIB, read_bytes=500),
            _sample("10", "n1", 90, 200.0, 1 * GIB, mem_peak_bytes=3 * GIB, read_bytes=700),
            _sample("10", "n2", 50, 40.0, 1 * GIB, write_bytes=10),
            _sample("10", "n2", 90, 100.0, 2 * GIB, write_bytes=20),
            # A node that is not the job's (a stale id on another host).
            _sample("10", "n9", 50, 999.0, 9 * GIB),
            # After the end.
            _sample("10", "n1", 200, 999.0, 9 * GIB),
        ]
    )
    usage = job_usage(store, CLUSTER, "10", host_rates=False)
    total = usage.total
    assert total["reason"] is None
    assert total["elapsed_s"] == 100.0
    assert total["cpu_seconds"] == 200.0 + 100.0
    assert total["cpu_efficiency"] == pytest.approx(300.0 / (8 * 100.0))
    assert total["mem_peak_bytes"] == 3 * GIB + 2 * GIB
    assert total["mem_efficiency"] == pytest.approx(5 / 16)
    assert total["read_bytes"] == 700
    assert total["write_bytes"] == 20
    assert sorted(usage.samples["host"].unique()) == ["n1", "n2"]
    assert len(usage.samples) == 5
    nodes = usage.nodes.set_index("host")
    assert nodes.loc["n1", "cpu_efficiency"] == pytest.approx(200.0 / (4 * 100.0))
    assert nodes.loc["n2", "cpu_efficiency"] == pytest.approx(100.0 / (4 * 100.0))
    assert nodes.loc["n1", "samples"] == 3
    assert usage.job.loc[0, "job_id"] == "10"
    assert total["verdicts"] == [
        "used 38 % of 8 cores: ask for 3",
        "memory peak 5 GiB of 16 GiB requested: ask for 6 GiB",
    ]


def test_a_running_job_ends_now(store: Store) -> None:
    _track(store, _job("11", state="running", native_state="RUNNING", end_ns=None))
    store.write([_sample("11", "n1", 30, 60.0, GIB)])
    usage = job_usage(store, CLUSTER, "11", now_ns=T0 + 40 * S, host_rates=False)
    assert usage.total["running"] is True
    assert usage.total["elapsed_s"] == 40.0
    assert usage.total["cpu_efficiency"] == pytest.approx(60.0 / (8 * 40.0))


def test_a_job_without_samples_has_no_figures_and_says_why(store: Store) -> None:
    _track(
        store,
        _job("12"),
        _job(
            "13", state="queued", native_state="PENDING", start_ns=None, end_ns=None, exec_hosts=()
        ),
    )
    usage = job_usage(store, CLUSTER, "12", host_rates=False)
    for name in ("cpu_seconds", "cpu_efficiency", "mem_peak_bytes", "read_bytes"):
        assert usage.total[name] is None
    assert "no job_usage sample in its window" in str(usage.total["reason"])
    assert usage.total["verdicts"] == []
    assert usage.nodes.empty
    queued = job_usage(store, CLUSTER, "13", host_rates=False)
    assert "has not started" in str(queued.total["reason"])
    assert queued.total["elapsed_s"] is None


def test_samples_only_on_other_hosts_are_named(store: Store) -> None:
    _track(store, _job("14"))
    store.write([_sample("14", "login1", 30, 60.0, GIB)])
    total = job_usage(store, CLUSTER, "14", host_rates=False).total
    assert total["cpu_seconds"] is None
    assert "login1" in str(total["reason"])


def test_an_unknown_job_is_an_error_naming_the_store(store: Store) -> None:
    with pytest.raises(CollectBusError, match="no job '99'"):
        job_usage(store, CLUSTER, "99")


def test_null_values_stay_unknown_not_zero(store: Store) -> None:
    """A sample whose CPU counter was out of range (stored NULL) does not count
    as zero; the other sample still gives the figure."""
    _track(store, _job("15", exec_hosts=("n1",), nodes_requested=1))
    store.write([_sample("15", "n1", 20, None, None), _sample("15", "n1", 40, 10.0, None)])
    total = job_usage(store, CLUSTER, "15", host_rates=False).total
    assert total["cpu_seconds"] == 10.0
    assert total["mem_peak_bytes"] is None
    assert total["reason"] == "no sample has its memory"


def test_host_rates_of_its_nodes_over_its_window(store: Store) -> None:
    _track(store, _job("16", exec_hosts=("n1.cluster.org",), nodes_requested=1))
    store.write([make_host_sample("n1", T0 + t * S) for t in range(-20, 130, 10)])
    store.write([make_host_sample("n2", T0 + t * S) for t in range(0, 100, 10)])
    store.write([_sample("16", "n1", 50, 10.0, GIB)])
    usage = job_usage(store, CLUSTER, "16")
    assert set(usage.hosts["host"]) == {"n1"}
    times = usage.hosts["time_ns"]
    assert times.min() >= T0
    assert times.max() < T0 + 100 * S
    node = usage.nodes.iloc[0]
    assert 0 <= node["host_cpu_percent_mean"] <= 100
    assert node["host_mem_used_peak_bytes"] > 0


def test_verdict_rules() -> None:
    assert cores_to_ask(0.98 * 20, 20) == 1
    assert cores_to_ask(4.32 * 10, 10) == 5
    assert cores_to_ask(0.0, 10) == 1
    assert memory_to_ask(int(1.2 * GIB)) == 2 * GIB
    assert memory_to_ask(500 * 2**20) == 768 * 2**20
    assert host_matches("n1", ["n1.cluster.org"])
    assert not host_matches("n10", ["n1"])
    fits = {"cores": 2, "cpu_seconds": 38.0, "elapsed_s": 20.0, "cpu_efficiency": 0.95}
    assert verdicts(fits) == ["used 95 % of 2 cores: the request fits"]
    idle = {"cores": 1, "cpu_seconds": 0.01, "elapsed_s": 20.0, "cpu_efficiency": 0.0005}
    assert verdicts(idle) == ["used 0 % of 1 core: mostly idle"]
    no_request = {"mem_peak_bytes": 3 * 2**20, "mem_requested_bytes": None}
    assert verdicts(no_request) == ["memory peak 3 MiB (no memory request recorded)"]
