"""A multi-step PBS scenario for the fake ``qstat``: queued, running, finished, down, back.

The steps are derived from the recorded MetaCentrum job
(``qstat_fx_json__metacentrum_running_job.json``, PBS 19.0.0, server zone
Europe/Prague) and the recorded OpenPBS held job
(``qstat_fx_json__buildtest_openpbs_container_held_job.json``), re-labelled as
a second job of the same server. What each step changes is written next to
it below; everything else is as recorded. The outputs are printed in PBS's
own layout (4-space indentation, no space after the colon).

The collector runs with ``history`` on, so the fake answers ``qstat -x -f``:

=============  ==========================================================
``queued``     job A queued (Q/10: recorded job without its run attributes),
               job B held (H/20, as recorded)
``running``    job A running as recorded (R/41), job B held
``finished``   job A finished (F/92, Exit_status 0, obittime, resources_used),
               job B deleted while held (F/91, no Exit_status)
``down``       the server cannot be reached: exit 255, header-only JSON and
               "cannot connect" on stderr (the recorded connect_error quirk)
``recovered``  the ``finished`` listing again, plus job C queued (a copy of
               job A's queued form with a new id)
=============  ==========================================================

Use :func:`build_scenario` to write the steps under a folder and
:meth:`Scenario.activate` to move the fake to a step (or :meth:`Scenario.walk`
to go through them all); :data:`STEPS` lists them. ``Scenario.jobs_collector()``
gives a ``pbs-jobs`` collector set up for it.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from collectbus.collectors.pbs.collector import PbsJobsCollector
from collectbus.collectors.run import LocalRunner

DATA = Path(__file__).resolve().parents[2] / "data" / "pbs"
FAKES = Path(__file__).resolve().parent
SERVER = "meta-pbs.metacentrum.cz"
ZONE = "Europe/Prague"
JOB_A = f"12860476.{SERVER}"
JOB_B = f"12860477.{SERVER}"
JOB_C = f"12860478.{SERVER}"
STEPS = ("queued", "running", "finished", "down", "recovered")
T = TypeVar("T")

# Attributes a job gets only once it runs (PBS RG, "Job Attributes").
_RUN_ONLY = ("exec_host", "exec_host2", "exec_vnode", "stime", "comment", "run_count")


def pbs_dumps(doc: dict[str, Any]) -> bytes:
    """JSON laid out as PBS prints it."""
    return (json.dumps(doc, indent=4, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _listings() -> dict[str, dict[str, Any]]:
    recorded = json.loads((DATA / "qstat_fx_json__metacentrum_running_job.json").read_text())
    held = json.loads(
        (DATA / "qstat_fx_json__buildtest_openpbs_container_held_job.json").read_text()
    )
    running = recorded["Jobs"][JOB_A]
    queued = {k: v for k, v in copy.deepcopy(running).items() if k not in _RUN_ONLY}
    queued.update(job_state="Q", substate=10, mtime="Tue Oct  4 21:23:20 2022")
    job_b = copy.deepcopy(held["Jobs"]["157.pbs"])
    job_b["server"] = SERVER
    finished = copy.deepcopy(running)
    finished.update(
        job_state="F",
        substate=92,
        Exit_status=0,
        obittime="Tue Oct  4 21:24:35 2022",
        mtime="Tue Oct  4 21:24:35 2022",
        resources_used={
            "cpupercent": 180,
            "cput": "00:01:50",
            "mem": "1048576kb",
            "ncpus": 4,
            "vmem": "2gb",
            "walltime": "00:01:02",
        },
    )
    deleted = copy.deepcopy(job_b)
    deleted.update(job_state="F", substate=91, mtime="Tue Oct  4 21:25:00 2022")
    header = {k: v for k, v in recorded.items() if k != "Jobs"}

    def listing(timestamp: int, jobs: dict[str, Any]) -> dict[str, Any]:
        return {**header, "timestamp": timestamp, "Jobs": jobs}

    return {
        "queued": listing(1664911401, {JOB_A: queued, JOB_B: job_b}),
        "running": listing(1664911414, {JOB_A: running, JOB_B: job_b}),
        "finished": listing(1664911600, {JOB_A: finished, JOB_B: deleted}),
        "recovered": listing(
            1664911800, {JOB_A: finished, JOB_B: deleted, JOB_C: copy.deepcopy(queued)}
        ),
    }


@dataclass(frozen=True)
class Scenario:
    """The step folders under ``root``; the fake replays the active one."""

    root: Path
    steps: tuple[str, ...] = STEPS

    @property
    def env(self) -> dict[str, str]:
        """What the fake needs in its environment."""
        return {"FAKE_PBS_DIR": str(self.root)}

    def activate(self, step: str) -> None:
        if step not in self.steps:
            raise ValueError(f"no step {step!r} (steps: {', '.join(self.steps)})")
        (self.root / "current").write_text(step)

    def jobs_collector(self, **settings: Any) -> PbsJobsCollector:
        """A ``pbs-jobs`` collector on the fake, with history on, in the server's zone."""
        options: dict[str, Any] = {
            "bin_dir": str(FAKES),
            "server": SERVER,
            "cluster": "metacentrum",
            "timezone": ZONE,
            "history": True,
            "runner": LocalRunner(env={**os.environ, **self.env}),
        }
        options.update(settings)
        return PbsJobsCollector(**options)

    def walk(self, collect: Callable[[], T]) -> Iterator[tuple[str, T]]:
        """Activate each step in turn and yield it with what ``collect()`` gave there."""
        for step in self.steps:
            self.activate(step)
            yield step, collect()

    def output(self, step: str) -> bytes:
        """What ``qstat -x -f -F json`` prints at ``step``."""
        return (self.root / step / "jobs_history.json").read_bytes()

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


def stage(
    folder: Path,
    kind: str,
    stdout: bytes | Path | None = None,
    *,
    stderr: bytes | Path | None = None,
    rc: int = 0,
    hang: bool = False,
) -> dict[str, str]:
    """Make the fake answer ``kind`` from ``folder``; returns the environment it needs.

    ``kind`` is ``jobs``, ``jobs_history``, ``queues``, ``server``, ``nodes``
    or ``reservations`` (``pbs_rstat -f``, text);
    ``stdout`` and ``stderr`` are bytes or a recorded file to copy.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = ".txt" if kind == "reservations" else ".json"
    for suffix, content in ((out, stdout), (".stderr", stderr)):
        if content is not None:
            data = content.read_bytes() if isinstance(content, Path) else content
            (folder / f"{kind}{suffix}").write_bytes(data)
    if rc:
        (folder / f"{kind}.rc").write_text(str(rc))
    if hang:
        (folder / f"{kind}.hang").touch()
    return {"FAKE_PBS_DIR": str(folder)}


def build_scenario(root: Path) -> Scenario:
    """Write every step under ``root`` and activate the first."""
    listings = _listings()
    for step in STEPS:
        folder = root / step
        folder.mkdir(parents=True)
        (folder / "server_name").write_text(SERVER)
        if step == "down":
            quirks = DATA / "quirks"
            (folder / "jobs_history.json").write_bytes(
                (quirks / "connect_error_stdout_issue_baw776.json").read_bytes()
            )
            (folder / "jobs_history.stderr").write_bytes(
                (quirks / "connect_error_stderr_issue_baw776.txt").read_bytes()
            )
            (folder / "jobs_history.rc").write_text("255")
        else:
            (folder / "jobs_history.json").write_bytes(pbs_dumps(listings[step]))
    scenario = Scenario(root)
    scenario.activate(STEPS[0])
    return scenario
