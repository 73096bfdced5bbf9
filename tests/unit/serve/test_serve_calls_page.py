"""/calls and /api/calls over a real SQLite store: figures, hostile text, empty tables."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest

from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord
from collectbus.serve import ServeApp
from collectbus.serve.http.callspage import MESSAGE_CHARS
from collectbus.store import Store
from collectbus.store import open as open_store

HOSTILE = '<script>alert("x")</script>&amp;'


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


def _call(handler: str, ago_s: float, elapsed_ns: int, error: str | None = None) -> CallRecord:
    return CallRecord(
        handler=handler,
        qualname="app.f",
        host="node1",
        pid=42,
        thread_id=1,
        started_ns=time.time_ns() - int(ago_s * NS_PER_S),
        elapsed_ns=elapsed_ns,
        error_type=None if error is None else "ValueError",
        error_message=error,
    )


def _get(app: ServeApp, target: str) -> tuple[int, str, str]:
    response = app.handle("GET", target)
    return response.status, response.content_type, response.body.decode()


def test_an_empty_calls_table_says_so(store: Store) -> None:
    app = ServeApp(store)
    status, ctype, page = _get(app, "/calls")
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    assert 'id="no-calls"' in page
    assert "no recorded calls in this window" in page
    status, _, body = _get(app, "/api/calls")
    doc = json.loads(body)
    assert (status, doc["calls"], doc["handlers"], doc["slowest"]) == (200, 0, [], [])


def test_figures_are_those_of_the_stored_rows(store: Store) -> None:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(400):
        handler = ("api.get_user", "db.query", "render")[i % 3]
        error = "boom" if i % 11 == 0 else None
        rows.append(_call(handler, 600 - i, int(rng.lognormal(13, 1.0)), error))
    rows.append(_call("api.get_user", 7200, 10**12))  # outside the default hour
    store.write(rows)
    _, _, body = _get(ServeApp(store), "/api/calls?slowest=5&errors=3")
    doc = json.loads(body)
    inside = rows[:-1]
    assert doc["calls"] == len(inside)
    assert doc["errors"] == sum(1 for r in inside if r.error_type)
    for row in doc["handlers"]:
        mine = [r for r in inside if r.handler == row["handler"]]
        seconds = np.array([r.elapsed_ns for r in mine]) / 1e9
        assert row["calls"] == len(mine)
        assert row["errors"] == sum(1 for r in mine if r.error_type)
        assert row["p50_s"] == pytest.approx(np.percentile(seconds, 50), rel=1e-12)
        assert row["p95_s"] == pytest.approx(np.percentile(seconds, 95), rel=1e-12)
        assert row["p99_s"] == pytest.approx(np.percentile(seconds, 99), rel=1e-12)
        assert row["max_s"] == pytest.approx(seconds.max(), rel=1e-12)
    assert [h["calls"] for h in doc["handlers"]] == sorted(
        (h["calls"] for h in doc["handlers"]), reverse=True
    )
    slowest = sorted(inside, key=lambda r: -r.elapsed_ns)[:5]
    assert [c["elapsed_ns"] for c in doc["slowest"]] == [r.elapsed_ns for r in slowest]
    failed = sorted((r for r in inside if r.error_type), key=lambda r: -r.started_ns)[:3]
    assert [c["started_ns"] for c in doc["latest_errors"]] == [r.started_ns for r in failed]


def test_hostile_names_and_messages_are_escaped_and_cut(store: Store) -> None:
    huge = "é" * 100_000 + "<b>bold</b>"
    store.write(
        [
            _call(HOSTILE, 10, 5_000_000),
            _call(HOSTILE, 5, 9_000_000, error=huge),
            _call("plain", 3, 1_000, error="caf\\udce9 not found"),
        ]
    )
    app = ServeApp(store)
    _, _, page = _get(app, "/calls")
    assert HOSTILE not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;" in page
    assert "<b>bold</b>" not in page
    shown = re.search(r"ValueError: (é+)…</td>", page)
    assert shown is not None
    assert len(shown.group(1)) == MESSAGE_CHARS - 1
    assert "caf\\udce9 not found" in page
    _, _, body = _get(app, "/api/calls")
    [error] = [e for e in json.loads(body)["latest_errors"] if e["handler"] == HOSTILE]
    assert error["error_message"] == huge  # whole in the JSON


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday-ish", "bad time window"),
        ("slowest=-1", "slowest must be between 0 and 1000"),
        ("errors=many", "errors must be a whole number"),
        ("handler=x", "unknown query parameter(s): handler"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(store: Store, query: str, message: str) -> None:
    app = ServeApp(store)
    for path in ("/api/calls", "/calls"):
        status, ctype, body = _get(app, f"{path}?{query}")
        assert (status, ctype) == (400, "application/json")
        assert message in json.loads(body)["error"]
