"""collectbus report: from a real recording and from the store; the page in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.browser import screenshot
from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process
from tests.integration.png import colours, read_png

# Load for the recording: CPU, then disk writes, so that the charts have shapes.
WORK = (
    "import os, time\n"
    "t = time.time()\n"
    "while time.time() - t < 1.0: pass\n"
    "with open('blob', 'wb') as f:\n"
    "    for _ in range(64): f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())\n"
    "os.remove('blob'); time.sleep(0.6)\n"
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real recording of this host: its result file and the database it went to."""
    tmp = tmp_path_factory.mktemp("rec")
    db = tmp / "cb.db"
    done = collectbus(
        "record", "--interval=0.2s", f"--out={tmp}", "--", sys.executable, "-c", WORK,
        cwd=tmp, env=collectbus_env(tmp, f"sqlite:///{db}"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = tmp.glob("timeseries-*.json")
    return result, db


def _report(tmp: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return collectbus_in_process(*args, cwd=tmp, env=collectbus_env(tmp, f"sqlite:///{db}"))


def test_a_result_file_becomes_one_page_with_a_chart_per_metric(
    recording: tuple[Path, Path], tmp_path: Path
) -> None:
    result, db = recording
    out = tmp_path / "report.html"
    done = _report(tmp_path, db, "report", str(result), "--html", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.count('<svg class="chart"') == 8
    assert page.count("<polyline") >= 8  # every chart has a line of real data
    assert "CPU busy (%)" in page
    assert re.search(r"Memory used \(total − available\) \((MiB|GiB)\)", page)
    assert "Disk write (" in page
    assert "Network receive (all but lo) (" in page
    assert "http" not in page
    assert "<script" not in page
    assert f"report: {out}" in done.stderr


def test_the_store_gives_the_same_kind_of_page(
    recording: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = recording
    out = tmp_path / "store.html"
    done = _report(tmp_path, db, "report", "--since=1h", "--html", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.count('<svg class="chart"') == 8
    assert "sqlite:///" in page


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("missing.json",), 1, "collectbus: error: missing.json: cannot read: No such file"),
        (("x.json", "--since=1h"), 2, "give a RESULT.json file, or --since"),
        ((), 2, "give a RESULT.json file, or --since"),
    ],
)
def test_bad_sources_are_one_line(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    done = _report(tmp_path, tmp_path / "cb.db", "report", *args, "--html", "out.html")
    assert done.returncode == code
    assert message in done.stderr
    assert not (tmp_path / "out.html").exists()


def test_an_unknown_host_is_named(recording: tuple[Path, Path], tmp_path: Path) -> None:
    result, db = recording
    done = _report(tmp_path, db, "report", str(result), "--host=nope", "--html", "o.html")
    assert done.returncode == 1
    assert f"{result}: no host 'nope'; hosts: " in done.stderr


def test_a_missing_folder_is_refused_before_any_work(
    recording: tuple[Path, Path], tmp_path: Path
) -> None:
    # As cp does: a typo in the folder must not create a new tree.
    result, db = recording
    out = tmp_path / "no" / "such" / "report.html"
    done = _report(tmp_path, db, "report", str(result), "--html", str(out))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"collectbus: error: {out}: cannot write the report: no folder '{out.parent}'"
    ]
    assert not (tmp_path / "no").exists()


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(
    recording: tuple[Path, Path], tmp_path: Path
) -> None:
    result, db = recording
    page = tmp_path / "report.html"
    assert _report(tmp_path, db, "report", str(result), "--html", str(page)).returncode == 0
    shot = tmp_path / "report.png"
    screenshot(page.as_uri(), shot, size=(1280, 1800), keep_as="report.png")
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 1800)
    counts = colours(rows)
    assert len(counts) >= 8, "the screenshot is nearly blank"
    page_background = (0xF6, 0xF7, 0xF9)
    header = (0x1D, 0x24, 0x33)
    first_host = (0x4E, 0x79, 0xA7)  # the palette's first colour: swatches and lines
    assert counts.get(page_background, 0) > width * 100
    assert counts.get(header, 0) > width * 20
    assert counts.get(first_host, 0) > 200
