"""The calls page of a real ``collectbus serve``, fed by a smartswitch Switcher's
calls flushed to the store, checked against the stored rows and drawn in headless Chromium."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import smartswitch
import sqlalchemy as sa

from collectbus.calls.smartswitch import CollectPlugin
from collectbus.store import open as open_store
from tests.integration.browser import chromium, screenshot
from tests.integration.png import colours, read_png
from tests.integration.test_serve import _serve

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="alert(1)">'
#: (handler, calls); the hostile name is a handler of its own.
PLAN = (("get_user", 120), ("save", 45), (HOSTILE, 6))
#: A file name that is not UTF-8, as Python hands it over: with a lone surrogate.
UNDECODABLE = os.fsdecode(b"caf\xe9")


def _record_through_smartswitch(url: str) -> None:
    """Real calls through a Switcher's CollectPlugin, flushed to the store."""
    plugin = CollectPlugin(capture="repr")
    api = smartswitch.Switcher("api").plug(plugin)

    @api
    def get_user(uid: int) -> dict[str, int]:
        if uid % 17 == 0:
            raise LookupError(f"no user {uid}")
        return {"id": uid, "sum": sum(range(uid * 50))}  # work that grows with uid

    @api
    def save(n: int) -> None:
        if n % 9 == 0:
            # A message that is huge and holds an undecodable file name.
            raise OSError(f"cannot write {UNDECODABLE}: " + "disk full " * 5000)

    @api(HOSTILE)
    def hostile(n: int) -> int:
        if n == 2:
            raise ValueError("<script>alert('boom')</script>")
        return n

    for name, n in PLAN:
        for i in range(n):
            with contextlib.suppress(LookupError, OSError, ValueError):
                api[name](i)
    with open_store(url) as store:
        assert plugin.collector.flush_to(store) == sum(n for _, n in PLAN)


def _stored(url: str) -> dict[str, tuple[np.ndarray, int]]:
    """Seconds per call and errors per handler, read from the table directly."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT handler, elapsed_ns, error_type FROM calls")).all()
    engine.dispose()
    out: dict[str, tuple[np.ndarray, int]] = {}
    for name in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == name]
        out[name] = (
            np.array([r[1] for r in mine], dtype=np.float64) / 1e9,
            sum(1 for r in mine if r[2] is not None),
        )
    return out


def _page_rows(page: str) -> dict[str, list[float]]:
    """The handlers table as drawn: name -> the exact values of its figure cells."""
    table = re.search(r'<table id="handlers">(.*?)</table>', page, re.S)
    assert table is not None, page
    out = {}
    for row in re.findall(r'<tr class="handler">(.*?)</tr>', table.group(1), re.S):
        name = re.search(r'<td class="name">(.*?)</td>', row, re.S)
        assert name is not None
        values = [float(v) for v in re.findall(r'data-value="([^"]+)"', row)]
        out[html.unescape(name.group(1))] = values
    return out


def test_the_calls_page_shows_the_stored_calls(tmp_path: Path, sqlite_url: str) -> None:
    chromium()  # skip (or fail under CI) before anything else
    open_store(sqlite_url).close()  # a new, empty store
    served = _serve(tmp_path, sqlite_url)
    try:
        status, _, empty = served.get("/calls")
        assert status == 200
        assert "no recorded calls in this window" in empty

        _record_through_smartswitch(sqlite_url)
        status, ctype, page = served.get("/calls")
        assert (status, ctype) == (200, "text/html; charset=utf-8")
        status, _, body = served.get("/api/calls")
        assert status == 200
        doc = json.loads(body)
        shot = tmp_path / "calls.png"
        screenshot(served.base + "/calls", shot, size=(1400, 1100), keep_as="calls.png")
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)

    stored = _stored(sqlite_url)
    names = {f"api.{n}" for n, _ in PLAN}
    assert set(stored) == names
    drawn = _page_rows(page)
    assert set(drawn) == names
    for name, (seconds, errors) in stored.items():
        calls, errs, ratio, avg, p50, p95, p99, top = drawn[name]
        assert (calls, errs) == (len(seconds), errors)
        assert ratio == pytest.approx(errors / len(seconds), rel=1e-12)
        assert avg == pytest.approx(seconds.mean(), rel=1e-9)
        expected = np.percentile(seconds, [50, 95, 99])
        assert [p50, p95, p99] == pytest.approx(list(expected), rel=1e-9)
        assert top == pytest.approx(seconds.max(), rel=1e-12)
        [row] = [h for h in doc["handlers"] if h["handler"] == name]
        assert [row["p50_s"], row["p95_s"], row["p99_s"]] == pytest.approx(list(expected))
    # The slowest calls listed are the slowest stored, slowest first.
    every = np.sort(np.concatenate([s for s, _ in stored.values()]))[::-1]
    assert [c["elapsed_s"] for c in doc["slowest"]] == pytest.approx(list(every[:10]))

    # Hostile text is shown as text, never as markup.
    assert HOSTILE not in page
    assert "<script" not in page
    assert html.escape("<script>alert('boom')</script>") in page
    assert "caf\\udce9" in page  # the undecodable name, escaped
    assert "disk full " * 30 not in page  # the huge message is cut on the page

    width, height, rows = read_png(shot)
    assert (width, height) == (1400, 1100)
    counts = colours(rows)
    assert len(counts) >= 8, "the screenshot is nearly blank"
    assert counts.get((0x1D, 0x24, 0x33), 0) > width * 20  # the header
    assert counts.get((0xB4, 0x23, 0x18), 0) > 50  # error text and counts in red
