"""The dashboard at ``/`` of a real ``collectbus serve --collect``, drawn in headless Chromium."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collectbus.store import open as open_store
from tests.integration.browser import chromium, screenshot
from tests.integration.png import colours, read_png
from tests.integration.test_serve import _serve
from tests.integration.test_serve_aggregates import AGG, CONFIG, HANDLERS, _write

pytestmark = pytest.mark.slow


def test_the_dashboard_shows_hosts_aggregates_and_health(tmp_path: Path, sqlite_url: str) -> None:
    chromium()  # skip (or fail under CI) before starting the server
    with open_store(sqlite_url) as store:
        _write(store, 0, 300)
    config = tmp_path / "collectbus.toml"
    config.write_text(CONFIG)
    served = _serve(
        tmp_path,
        sqlite_url,
        "--collect",
        "--interval",
        "500ms",
        "--aggregate-interval",
        "500ms",
        COLLECTBUS_CONFIG=str(config),
    )
    try:
        page = ""
        for _ in range(200):
            status, ctype, page = served.get("/")
            assert status == 200, page
            # Rates need two samples; a line needs two rates.
            if page.count("<polyline") >= 6 and f"<h3>{AGG}</h3>" in page:
                break
            time.sleep(0.25)
        assert ctype == "text/html; charset=utf-8"
        assert page.count("<polyline") >= 6, page
        for title in ("CPU busy", "Memory used", "Disk read", "Network receive"):
            assert f"<h3>{title} (" in page
        for handler in HANDLERS:
            assert f"<td>{handler}</td>" in page
        assert "Collections, last hour" in page
        assert "<td>host</td>" in page
        assert "Aggregate updates, every 0.5 s" in page
        assert "http://" not in page.replace(served.base, "")
        assert "<script" not in page

        shot = tmp_path / "dashboard.png"
        screenshot(served.base + "/", shot, size=(1280, 1600), keep_as="dashboard.png")
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 1600)
    counts = colours(rows)
    assert len(counts) >= 8, "the screenshot is nearly blank"
    page_background = (0xF6, 0xF7, 0xF9)
    header = (0x1D, 0x24, 0x33)
    first_host = (0x4E, 0x79, 0xA7)  # the palette's first colour: swatches and lines
    assert counts.get(page_background, 0) > width * 50
    assert counts.get(header, 0) > width * 20
    assert counts.get(first_host, 0) > 200
