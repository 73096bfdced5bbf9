"""The fleet page of a real ``collectbus serve``: one tile per host, its state
and figures equal to a recomputation from the stored rows, drawn in headless
Chromium; ``/api/hosts`` as its document; each tile links to the host's charts."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest

from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from tests.integration.browser import chromium, screenshot
from tests.integration.png import colours, read_png
from tests.integration.test_hosts_cli import _busy, _expected, _fill
from tests.integration.test_serve import _serve

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="alert(1)">'
S = 10**9


def _tiles(page: str) -> dict[str, dict[str, object]]:
    """The tiles as drawn: host -> state and the exact value of each figure (None: none)."""
    out: dict[str, dict[str, object]] = {}
    for attrs, body in re.findall(r'<a class="tile [^"]*"([^>]*)>(.*?)</a>', page, re.S):
        host = html.unescape(re.search(r'data-host="([^"]*)"', attrs).group(1))  # type: ignore[union-attr]
        tile: dict[str, object] = {
            "state": re.search(r'data-state="([^"]*)"', attrs).group(1),  # type: ignore[union-attr]
            "href": html.unescape(re.search(r'href="([^"]*)"', attrs).group(1)),  # type: ignore[union-attr]
        }
        for name, value in re.findall(r'data-figure="(\w+)"(?: data-value="([^"]+)")?', body):
            tile[name] = float(value) if value else None
        out[host] = tile
    return out


def test_the_fleet_page_shows_every_host_as_stored(tmp_path: Path, sqlite_url: str) -> None:
    chromium()  # skip (or fail under CI) before anything else
    open_store(sqlite_url).close()
    served = _serve(tmp_path, sqlite_url)
    try:
        status, _, empty = served.get("/fleet")
        assert status == 200
        assert 'id="no-hosts"' in empty

        now = time.time_ns()
        _fill(sqlite_url, now)
        with open_store(sqlite_url) as store:  # more reporting hosts, busy and hot
            for n, share in enumerate((0.1, 0.75, 0.95, 0.35, 0.55, 0.92, 0.05, 0.8)):
                name = f"c{n:02d}" if n else HOSTILE
                store.write(
                    [_busy(make_host_sample(name, now - k * 10 * S, seed=n), share)
                     for k in (2, 1, 0)]
                )  # fmt: skip
        status, ctype, page = served.get("/fleet")
        assert (status, ctype) == (200, "text/html; charset=utf-8")
        status, _, body = served.get("/api/hosts")
        assert status == 200
        doc = json.loads(body)
        status, _, one = served.get("/?host=c02")
        assert status == 200
        status, _, bad = served.get("/api/hosts?interval=soon")
        assert status == 400
        assert "interval" in json.loads(bad)["error"]
        shot = tmp_path / "fleet.png"
        screenshot(served.base + "/fleet", shot, size=(1200, 700), keep_as="fleet.png")
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)

    expected = _expected(sqlite_url, now)
    drawn = _tiles(page)
    assert set(drawn) == set(expected)
    assert [h["host"] for h in doc["hosts"]] == sorted(expected)
    for host, want in expected.items():
        tile = drawn[host]
        assert tile["state"] == want["state"], host
        assert tile["href"] == "/?host=" + re.sub(r"[^A-Za-z0-9_.~-]",
                                                  lambda m: f"%{ord(m.group()):02X}", host)  # fmt: skip
        [row] = [r for r in doc["hosts"] if r["host"] == host]
        for figure in ("cpu_percent", "mem_used_percent", "load1"):
            if want[figure] is None:
                assert tile[figure] is None, (host, figure)
                assert row[figure] is None, (host, figure)
            else:
                assert tile[figure] == pytest.approx(want[figure]), (host, figure)
                assert row[figure] == pytest.approx(want[figure]), (host, figure)
    assert doc["states"] == {
        s: sum(1 for w in expected.values() if w["state"] == s)
        for s in ("reporting", "late", "silent")
    }
    assert doc["late_after_s"] == 30
    assert doc["silent_after_s"] == 100
    # The tile's link: the dashboard for that host alone.
    assert "c02, last hour" in one
    assert 'href="/fleet"' in one
    # A hostile name is text, never markup.
    assert HOSTILE not in page
    assert html.escape(HOSTILE) in page

    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 700)
    counts = colours(rows)
    assert counts.get((0x1D, 0x24, 0x33), 0) > width * 20  # the header
    for tone, rgb in {
        "calm": (0x1A, 0x7F, 0x37),
        "busy": (0xC4, 0x54, 0x0A),
        "hot": (0xB4, 0x23, 0x18),
        "late": (0xF5, 0xC5, 0x42),
        "silent": (0x3B, 0x41, 0x50),
    }.items():
        assert counts.get(rgb, 0) > 2000, f"no {tone} tile drawn"
