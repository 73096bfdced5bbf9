"""The job charts of ``collectbus report``: queue depth and waits per queue.

Six hours of a PBS cluster with three queues are simulated (seeded): jobs are
submitted, some held first, then queued, run and finish; the job tracker
stores a complete ``qstat`` listing every two minutes, as the daemon does.
The charts' data must equal what the simulation itself says: the jobs queued
in each queue as of the latest listing, and the waits of the jobs that
started. The page is then drawn in headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectbus.analysis.jobcharts import job_chart_data
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord
from collectbus.report.svg import human_duration
from collectbus.store import open as open_store
from collectbus.testing.schedulers import make_pbs_job
from tests.integration.browser import screenshot
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process
from tests.integration.png import colours, read_png

S = 10**9
T0 = 1_796_000_400 * S  # a whole hour, UTC
SPAN = 6 * 3600 * S
EVERY = 120 * S
QUEUES = {"prod": 2400.0, "debug": 120.0, "preemptable": 900.0}  # mean wait, s


@dataclass(frozen=True)
class SimJob:
    number: int
    queue: str
    submit: int
    released: int  # end of the hold (= submit when never held)
    start: int | None
    end: int | None

    def state(self, t: int) -> str | None:
        if t < self.submit:
            return None
        if t < self.released:
            return "held"
        if self.start is None or t < self.start:
            return "queued"
        if self.end is None or t < self.end:
            return "running"
        return "completed"


def _simulate() -> list[SimJob]:
    rng = random.Random(18)
    jobs = []
    for n in range(90):
        queue = rng.choices(list(QUEUES), weights=(5, 3, 2))[0]
        submit = T0 + rng.randrange(0, 5 * 3600) * S
        released = submit + (rng.randrange(600, 3600) * S if rng.random() < 0.15 else 0)
        wait = int(rng.expovariate(1 / QUEUES[queue]) * S)
        start: int | None = released + wait
        end: int | None = None
        if start is not None and start < T0 + SPAN - 30 * 60 * S:
            end = start + rng.randrange(300, 3600) * S
        else:
            start = None  # still waiting when the window closes
        jobs.append(SimJob(1000 + n, queue, submit, released, start, end))
    return jobs


def _listing(jobs: list[SimJob], t: int) -> list[JobRecord]:
    """What ``qstat -x`` lists at ``t``: live jobs, and jobs ended in the last 10 minutes."""
    out = []
    for job in jobs:
        state = job.state(t)
        if state is None or (job.end is not None and job.end < t - 600 * S):
            continue
        out.append(
            make_pbs_job(
                job.number,
                submit_ns=job.submit,
                observed_ns=t,
                state=state,
                queue=job.queue,
                start_ns=job.start if state in ("running", "completed") else None,
                end_ns=job.end if state == "completed" else None,
            )
        )
    return out


def _collections() -> Iterator[int]:
    return iter(range(T0, T0 + SPAN, EVERY))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[SimJob]]:
    db = tmp_path_factory.mktemp("jobs") / "cb.db"
    url = f"sqlite:///{db}"
    jobs = _simulate()
    with open_store(url) as store:
        tracked = TrackedStore(store)
        for t in _collections():
            tracked.apply(_listing(jobs, t), complete=True, now_ns=t)
    return url, jobs


def _truth_queued(jobs: list[SimJob], times: list[int]) -> dict[str, list[int]]:
    """Per queue, the jobs queued as of the latest listing at or before each time."""
    listings = list(_collections())
    out = {q: [0] * len(times) for q in QUEUES}
    for i, t in enumerate(times):
        seen = [c for c in listings if c <= t]
        if not seen:
            continue
        at = seen[-1]
        for job in jobs:
            if job.state(at) == "queued":
                out[job.queue][i] += 1
    return {q: counts for q, counts in out.items() if any(counts)}


def _truth_waits(jobs: list[SimJob]) -> dict[str, list[float]]:
    last = list(_collections())[-1]
    out: dict[str, list[float]] = {}
    for job in jobs:
        # Seen started: the start came before the last listing.
        if job.start is not None and job.start <= last:
            out.setdefault(job.queue, []).append((job.start - job.submit) / S)
    return {q: sorted(w) for q, w in out.items()}


def test_the_chart_data_equals_the_simulation(simulated: tuple[str, list[SimJob]]) -> None:
    url, jobs = simulated
    with open_store(url) as store:
        data = job_chart_data(store, since_ns=T0, until_ns=T0 + SPAN)
    assert data.times_ns[0] == T0
    assert len(data.times_ns) == 240
    truth = _truth_queued(jobs, data.times_ns)
    assert set(truth) == set(QUEUES), "every queue should have had jobs queued"
    assert {q: c for q, c in data.queued.items() if any(c)} == truth
    waits = _truth_waits(jobs)
    assert data.waits.keys() == waits.keys()
    for queue, expected in waits.items():
        assert data.waits[queue] == pytest.approx(expected), queue


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / S, tz=dt.UTC).isoformat()


def _write_report(url: str, tmp_path: Path, *args: str) -> tuple[Path, str]:
    out = tmp_path / "jobs.html"
    done = collectbus_in_process(
        "report", "--since", _iso(T0), "--until", _iso(T0 + SPAN), "--html", str(out), *args,
        cwd=tmp_path, env=collectbus_env(tmp_path, url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, out.read_text()


def test_the_page_shows_each_queues_peak_and_waits(
    simulated: tuple[str, list[SimJob]], tmp_path: Path
) -> None:
    url, jobs = simulated
    _, page = _write_report(url, tmp_path)
    assert '<h2 class="section">Batch jobs</h2>' in page
    assert "<table>" not in page  # no host samples: no host table, no host charts
    assert page.count('<svg class="chart"') == 1
    assert page.count('<svg class="chart boxes"') == 1
    with open_store(url) as store:
        times = job_chart_data(store, since_ns=T0, until_ns=T0 + SPAN).times_ns
    for queue, counts in _truth_queued(jobs, times).items():
        assert f'{queue} <span class="stats">peak {max(counts)},' in page, queue
    titles = [
        html.unescape(t) for t in re.findall(r"<g class=\"box\"><title>([^<]*)</title>", page)
    ]
    assert len(titles) == len(QUEUES)
    for queue, waits in _truth_waits(jobs).items():
        lo, hi = human_duration(waits[0]), human_duration(waits[-1])
        median = human_duration(statistics.median(waits))
        q1, _, q3 = statistics.quantiles(waits, n=4, method="inclusive")
        expected = (
            f"{queue}: {len(waits)} jobs; min {lo}, 25 % {human_duration(q1)}, "
            f"median {median}, 75 % {human_duration(q3)}, max {hi}"
        )
        assert expected in titles, (expected, titles)
    # The x axis is the time of day, UTC, on round hours.
    assert "time (UTC)" in page
    for hour in range(7):
        label = dt.datetime.fromtimestamp(T0 / S + hour * 3600, tz=dt.UTC).strftime("%H:%M")
        assert f">{label}</text>" in page, label


def test_a_cluster_with_no_jobs_and_no_host_samples_is_one_line(
    simulated: tuple[str, list[SimJob]], tmp_path: Path
) -> None:
    url, _ = simulated
    done = collectbus_in_process(
        "report", "--since", _iso(T0), "--until", _iso(T0 + SPAN), "--cluster", "nope",
        "--html", str(tmp_path / "x.html"), cwd=tmp_path, env=collectbus_env(tmp_path, url),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"collectbus: error: {url}: no host samples and no jobs in this window"
    )
    assert not (tmp_path / "x.html").exists()


def test_cluster_is_refused_with_a_result_file(tmp_path: Path) -> None:
    done = collectbus_in_process(
        "report", "result.json", "--cluster", "aurora", "--html", str(tmp_path / "x.html"),
        cwd=tmp_path, env=collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "--cluster charts the stored jobs: give it with --since" in done.stderr


@pytest.mark.slow
def test_the_job_charts_render_in_headless_chromium(
    simulated: tuple[str, list[SimJob]], tmp_path: Path
) -> None:
    url, _ = simulated
    page, _ = _write_report(url, tmp_path)
    shot = tmp_path / "jobs.png"
    screenshot(page.as_uri(), shot, size=(1280, 700), keep_as="report-jobs.png")
    width, _, rows = read_png(shot)
    counts = colours(rows)
    # The three queues' colours (the palette's first three, by queue name):
    # lines in the depth chart, boxes and whiskers in the wait chart.
    for colour in ((0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B), (0x59, 0xA1, 0x4F)):
        assert counts.get(colour, 0) > 150, colour
    assert counts.get((0xF6, 0xF7, 0xF9), 0) > width * 50  # the page, not a blank
