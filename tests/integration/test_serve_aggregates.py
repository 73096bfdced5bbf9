"""``collectbus serve`` with an aggregate over ``calls``: a real subprocess,
scraped over HTTP, on SQLite and PostgreSQL.

The server updates the aggregate in the background; the tests write, edit and
delete calls in the store and check that every counter only grows, that new
rows are counted exactly once, and that the gauges equal what
``collectbus aggregate show`` prints.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus, collectbus_env
from tests.integration.test_serve import Served, _serve
from tests.unit.serve.serve_helpers import Samples, counters, parse, promtool_check, value

pytestmark = pytest.mark.slow

T0 = 1_700_000_000 * NS_PER_S
HANDLERS = ("get_user", "db.query", "render")
AGG = "calls_by_handler"
CONFIG = f"""
[[aggregates]]
name = "{AGG}"
table = "calls"
keys = ["handler"]
measures = ["elapsed_ns"]
error_column = "error_type"
"""
#: Counts update runs, which go on while nothing is written.
RUNS = "collectbus_aggregate_updates_total"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


def _write(store: Store, start: int, n: int) -> Counter[str]:
    calls = [
        CallRecord(
            handler=HANDLERS[i % 3],
            qualname="app.f",
            host="h",
            pid=1,
            thread_id=1,
            started_ns=T0 + i,
            elapsed_ns=(i % 97 + 1) * 37_000,
            error_type="ValueError" if i % 7 == 0 else None,
        )
        for i in range(start, start + n)
    ]
    store.write(calls)
    return Counter(c.handler for c in calls)


def _start(tmp_path: Path, store: Store) -> Served:
    config = tmp_path / "collectbus.toml"
    config.write_text(CONFIG)
    url = store.engine.url.render_as_string(hide_password=False)
    return _serve(tmp_path, url, "--aggregate-interval", "200ms", COLLECTBUS_CONFIG=str(config))


def _shown(tmp_path: Path, store: Store) -> dict[str, dict[str, object]]:
    env = collectbus_env(tmp_path, store.engine.url.render_as_string(hide_password=False))
    env["COLLECTBUS_CONFIG"] = str(tmp_path / "collectbus.toml")
    done = collectbus("aggregate", "show", AGG, "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return {str(row["handler"]): row for row in json.loads(done.stdout)}


def _series(samples: Samples, name: str) -> dict[str, float]:
    """One metric's values of the aggregate, by handler."""
    return {
        dict(labels)["handler"]: v
        for (n, labels), v in samples.items()
        if n == name and dict(labels).get("aggregate") == AGG
    }


def _scrape_until(served: Served, rows: int) -> tuple[str, Samples]:
    """Scrape until the aggregate holds ``rows`` rows (it is updated in the background)."""
    seen: list[float] = []
    for _ in range(300):
        text = served.scrape()
        samples = parse(text)
        held = sum(_series(samples, "collectbus_aggregate_current_rows").values())
        seen.append(held)
        if held == rows:
            return text, samples
        time.sleep(0.1)
    raise AssertionError(
        f"the aggregate never held {rows} rows: {seen[-5:]}\n" + "".join(served.stderr)
    )


def _grown(before: Samples, after: Samples) -> None:
    for key, old in counters(before).items():
        assert after.get(key, 0.0) >= old, (key, old, after.get(key))


def _counted(samples: Samples) -> Samples:
    return {k: v for k, v in counters(samples).items() if k[0] != RUNS}


def test_new_rows_are_counted_once_and_no_counter_goes_down(tmp_path: Path, store: Store) -> None:
    _write(store, 0, 120)
    served = _start(tmp_path, store)
    try:
        text, base = _scrape_until(served, 120)
        promtool_check(text)
        # The first read counts what the aggregate holds.
        assert sum(_series(base, "collectbus_aggregate_rows_total").values()) == 120
        base = parse(served.scrape())
        # Scraped again with no new rows: the very same counters.
        time.sleep(0.5)
        again = parse(served.scrape())
        assert _counted(again) == _counted(base)
        assert value(again, RUNS, aggregate=AGG) > 0

        n = 250
        new = _write(store, 120, n)
        text, grown = _scrape_until(served, 120 + n)
        promtool_check(text)
        _grown(base, grown)
        for handler, k in new.items():
            key = {"aggregate": AGG, "handler": handler}
            for name in ("collectbus_aggregate_rows_total",):
                assert value(grown, name, **key) == value(base, name, **key) + k
            name = "collectbus_aggregate_measure_count"
            assert value(grown, name, **key, measure="elapsed_ns") == (
                value(base, name, **key, measure="elapsed_ns") + k
            )
            inf = {**key, "measure": "elapsed_ns", "le": "+Inf"}
            assert value(grown, "collectbus_aggregate_measure_bucket", **inf) == (
                value(grown, name, **key, measure="elapsed_ns")
            )
        # Only additions: the histogram's sum grew by the exact sum of the new rows.
        sums = _series(grown, "collectbus_aggregate_measure_sum")
        held = _series(grown, "collectbus_aggregate_measure_current_sum_value")
        assert sums == held

        # Edits and deletes: retractions. No counter goes down; gauges follow.
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE calls SET elapsed_ns = elapsed_ns * 3 WHERE id % 5 = 0"))
            conn.execute(
                sa.text(
                    "UPDATE calls SET handler = 'render' WHERE handler = 'db.query' AND id % 4 = 0"
                )
            )
            conn.execute(sa.text("UPDATE calls SET error_type = NULL WHERE id % 3 = 0"))
            conn.execute(sa.text("DELETE FROM calls WHERE id % 6 = 1"))
            remaining = int(conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one())
        text, edited = _scrape_until(served, remaining)
        promtool_check(text)
        _grown(grown, edited)
        retracted = _series(edited, "collectbus_aggregate_rows_retracted_total")
        assert sum(retracted.values()) > 0
        rows = _series(edited, "collectbus_aggregate_rows_total")
        current = _series(edited, "collectbus_aggregate_current_rows")
        for handler in HANDLERS:
            # Gains minus losses since the first read (which started from zero).
            assert rows[handler] - retracted[handler] == current[handler]
        _gauges_match_show(tmp_path, store, served, edited)
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)
    assert "Traceback" not in "".join(served.stderr)


def _gauges_match_show(tmp_path: Path, store: Store, served: Served, samples: Samples) -> None:
    shown = _shown(tmp_path, store)
    # The scrape and the show read the same stored state once updates have
    # caught up; read once more if an update landed in between.
    for _ in range(20):
        if _gauges(samples) == _expected(shown):
            return
        time.sleep(0.2)
        samples = parse(served.scrape())
        shown = _shown(tmp_path, store)
    assert _gauges(samples) == _expected(shown)


def _gauges(samples: Samples) -> dict[str, dict[str, float]]:
    figures = {
        "count": "collectbus_aggregate_current_rows",
        "errors": "collectbus_aggregate_current_errors",
        "elapsed_ns_n": "collectbus_aggregate_measure_current_n",
        "elapsed_ns_sum": "collectbus_aggregate_measure_current_sum_value",
        "elapsed_ns_min": "collectbus_aggregate_measure_min",
        "elapsed_ns_max": "collectbus_aggregate_measure_max",
        "elapsed_ns_mean": "collectbus_aggregate_measure_mean",
        "elapsed_ns_p50": "collectbus_aggregate_measure_p50",
        "elapsed_ns_p95": "collectbus_aggregate_measure_p95",
        "elapsed_ns_p99": "collectbus_aggregate_measure_p99",
    }
    out: dict[str, dict[str, float]] = {}
    for column, name in figures.items():
        for handler, v in _series(samples, name).items():
            out.setdefault(handler, {})[column] = v
    return out


def _expected(shown: dict[str, dict[str, object]]) -> dict[str, dict[str, float]]:
    columns = (
        "count",
        "errors",
        *(f"elapsed_ns_{s}" for s in ("n", "sum", "min", "max", "mean", "p50", "p95", "p99")),
    )
    return {
        handler: {c: float(str(row[c])) for c in columns if row[c] is not None}
        for handler, row in shown.items()
    }


def test_api_aggregates_and_a_failing_update_do_not_stop_the_server(
    tmp_path: Path, store: Store
) -> None:
    _write(store, 0, 30)
    config = tmp_path / "collectbus.toml"
    config.write_text(
        CONFIG + '\n[[aggregates]]\nname = "broken"\ntable = "no_such_table"\nkeys = ["handler"]\n'
    )
    url = store.engine.url.render_as_string(hide_password=False)
    served = _serve(tmp_path, url, "--aggregate-interval", "200ms", COLLECTBUS_CONFIG=str(config))
    try:
        _scrape_until(served, 30)
        status, ctype, body = served.get("/api/aggregates")
        assert status == 200
        assert ctype == "application/json"
        doc = {a["name"]: a for a in json.loads(body)}
        assert set(doc) == {AGG}
        groups = {g["keys"]["handler"]: g for g in doc[AGG]["groups"]}
        assert {h: g["count"] for h, g in groups.items()} == {h: 10 for h in HANDLERS}
        samples = parse(served.scrape())
        assert value(samples, "collectbus_aggregate_update_failing", aggregate="broken") == 1.0
        assert value(samples, "collectbus_aggregate_update_errors_total", aggregate="broken") >= 1
        assert value(samples, "collectbus_aggregate_update_failing", aggregate=AGG) == 0.0
        time.sleep(0.6)
        # The error, one line naming the aggregate and its table, is logged once.
        logged = [line for line in served.stderr if "no_such_table" in line]
        assert len(logged) == 1, logged
        assert "broken" in logged[0]
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)


def test_aggregate_without_aggregates_configured_is_a_usage_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = collectbus_env(tmp_path, sqlite_url)
    config = tmp_path / "empty.toml"
    config.write_text("")
    env["COLLECTBUS_CONFIG"] = str(config)
    done = collectbus("serve", "--listen", "127.0.0.1:0", "--aggregate", cwd=tmp_path, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (
        f"collectbus: error: {config}: --aggregate: no [[aggregates]] configured"
    ), done.stderr
    assert "Traceback" not in done.stderr
