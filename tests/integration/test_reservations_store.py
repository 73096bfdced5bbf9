"""Reservations collected from the fake ``pbs_rstat`` (fixtures written from
PBS's documented format), tracked and stored with their history, on SQLite
and PostgreSQL; the failures that must mark nothing gone; migration 0014."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.pbs.reservations import PbsReservationsCollector
from collectbus.errors import CommandFailed, CommandTimeout, ParseError
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import alembic_config, upgrade
from collectbus.store.reservations import read_reservation_history, read_reservations
from tests.fakes.pbs.scenario import FAKES, stage

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs" / "reservations"
S = 10**9


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * S


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "pbs"
    for key, value in stage(folder, "reservations", b"").items():
        monkeypatch.setenv(key, value)
    (folder / "server_name").write_text("pbs01")
    return folder


def _collector(**kwargs: object) -> PbsReservationsCollector:
    options: dict[str, object] = {
        "cluster": "c1", "bin_dir": str(FAKES), "server": "pbs01", "timezone": "UTC",
        "timeout": 5.0,
    }  # fmt: skip
    options.update(kwargs)
    return PbsReservationsCollector(**options)  # type: ignore[arg-type]


def _collect(tracked: TrackedStore, collector: PbsReservationsCollector, at: str) -> int:
    """One collection at ``at`` (UTC), written as the pipeline writes it."""
    now = _ns(at)
    ctx = CollectContext(host="h", clock=FakeClock(start_ns=now))
    records = collector.collect(ctx)
    event = CollectionEvent(
        source=collector.name, host="h", started_ns=now, duration_ns=1,
        status="partial" if ctx.problems else "ok", records=len(records),
        details=tuple(ctx.details),
    )  # fmt: skip
    return tracked.write([*records, event])


def _rows(store: Store) -> dict[str, dict[str, object]]:
    with store.reservations.reading() as conn:
        return {str(r["resv_id"]): r for r in read_reservations(conn)}


def _history(store: Store) -> list[tuple[object, ...]]:
    with store.reservations.reading() as conn:
        rows = read_reservation_history(conn)
    return [(r["resv_id"], r["field"], r["old_value"], r["new_value"], r["note"]) for r in rows]


def test_reservations_are_stored_with_a_history_that_outlives_them(
    store: Store, fake: Path
) -> None:
    tracked = TrackedStore(store)
    collector = _collector()
    listing = (DATA / "pbs_rstat_f.txt").read_text()
    stage(fake, "reservations", listing.encode())
    assert _collect(tracked, collector, "2026-12-07T20:00:00") == 6  # and the event
    rows = _rows(store)
    assert sorted(rows) == ["R1042.pbs01", "R1043.pbs01", "R1045.pbs01", "R1046.pbs01",
                            "S1044.pbs01"]  # fmt: skip
    r = rows["R1042.pbs01"]
    assert (r["state"], r["owner"], r["queue"]) == ("confirmed", "user01", "R1042")
    assert r["nodes"] == "cn001,cn002,cn003,cn004"
    assert r["users"] == "user01@login1.example.org,+user02,-user03"
    assert r["start_ns"] == _ns("2026-12-08T09:00:00")
    assert r["created_ns"] == _ns("2026-12-07T14:02:11")
    assert [h[3] for h in _history(store)] == [
        "confirmed", "running", "confirmed", "degraded", "unconfirmed"
    ]  # fmt: skip

    # R1043 (running, ends 02:00) is deleted early; R1046 is confirmed, on other nodes.
    blocks = listing.split("\n\n")
    gone = [b for b in blocks if not b.startswith("Resv ID: R1043")]
    changed = (
        "\n\n".join(gone)
        .replace("reserve_state = RESV_UNCONFIRMED", "reserve_state = RESV_CONFIRMED")
        .replace(
            "schedselect = 1:ncpus=4\n", "schedselect = 1:ncpus=4\nresv_nodes = (cn099:ncpus=4)\n"
        )
    )
    stage(fake, "reservations", changed.encode())
    _collect(tracked, collector, "2026-12-07T21:00:00")
    rows = _rows(store)
    assert rows["R1043.pbs01"]["state"] == "disappeared"
    assert (rows["R1046.pbs01"]["state"], rows["R1046.pbs01"]["nodes"]) == ("confirmed", "cn099")
    assert _history(store)[5:] == [
        ("R1046.pbs01", "state", "unconfirmed", "confirmed", None),
        ("R1046.pbs01", "nodes", None, "cn099", None),
        ("R1043.pbs01", "state", "running", "disappeared",
         "gone from a complete listing before its end"),
    ]  # fmt: skip

    # No reservation left, the next day: an empty listing is not an error;
    # those past their end have ended, the others disappeared, rows kept.
    stage(fake, "reservations", b"")
    _collect(tracked, collector, "2026-12-08T22:00:00")
    states = {k: v["state"] for k, v in _rows(store).items()}
    assert states == {
        "R1042.pbs01": "ended", "R1043.pbs01": "disappeared", "R1045.pbs01": "ended",
        "S1044.pbs01": "disappeared", "R1046.pbs01": "disappeared",
    }  # fmt: skip
    notes = {h[0]: h[4] for h in _history(store)[8:]}
    assert notes["R1042.pbs01"] == "gone from the listing after its end"
    assert len(_history(store)) == 12

    # A restarted writer reads what is stored: nothing is marked twice.
    _collect(TrackedStore(store), collector, "2026-12-08T22:05:00")
    assert len(_history(store)) == 12


def test_a_partial_listing_marks_nothing_gone(store: Store, fake: Path) -> None:
    tracked = TrackedStore(store)
    collector = _collector()
    stage(fake, "reservations", DATA / "pbs_rstat_f.txt")
    _collect(tracked, collector, "2026-12-07T20:00:00")
    stage(fake, "reservations", DATA / "pbs_rstat_f_broken_entry.txt")
    ctx = CollectContext(host="h", clock=FakeClock(start_ns=_ns("2026-12-07T20:05:00")))
    records = collector.collect(ctx)
    assert [r.resv_id for r in records] == ["R2001.pbs01"]
    (problem,) = ctx.problems
    assert "cluster c1: 3 reservations refused: R2002.pbs01" in str(problem)
    assert ("reservation_listing", "partial") in ctx.details
    _collect(tracked, collector, "2026-12-07T20:05:00")
    states = {k: v["state"] for k, v in _rows(store).items()}
    assert states["R1042.pbs01"] == "confirmed"  # not in the listing, yet not gone
    assert states["R2001.pbs01"] == "confirmed"


@pytest.mark.parametrize(
    ("kind", "error", "text"),
    [
        ("exit", CommandFailed, "cannot connect to server"),
        ("hang", CommandTimeout, "pbs_rstat -f"),
        ("garbage", ParseError, "not pbs_rstat -f output"),
        ("stderr", CommandFailed, "no reservations in the output"),
    ],
)
def test_a_failing_pbs_rstat_fails_the_collection_and_marks_nothing(
    store: Store, fake: Path, kind: str, error: type[Exception], text: str
) -> None:
    tracked = TrackedStore(store)
    stage(fake, "reservations", DATA / "pbs_rstat_f.txt")
    _collect(tracked, _collector(), "2026-12-07T20:00:00")
    for name in ("reservations.txt", "reservations.stderr", "reservations.rc"):
        (fake / name).unlink(missing_ok=True)
    if kind == "exit":
        stage(fake, "reservations", b"", stderr=b"pbs_rstat: cannot connect to server\n", rc=255)
    elif kind == "hang":
        stage(fake, "reservations", b"", hang=True)
    elif kind == "garbage":
        stage(fake, "reservations", b"<html>502 Bad Gateway</html>\n")
    else:
        stage(fake, "reservations", b"", stderr=b"pbs_rstat: Unauthorized Request\n")
    ctx = CollectContext(host="h", clock=FakeClock(start_ns=_ns("2026-12-07T20:05:00")))
    with pytest.raises(error) as caught:
        _collector(timeout=1.0).collect(ctx)
    message = str(caught.value)
    assert text in message
    assert "server pbs01" in message
    assert "\n" not in message
    # The failed collection's event carries no listing: nothing is gone.
    failed = CollectionEvent(
        source="pbs-reservations", host="h", started_ns=_ns("2026-12-07T20:05:00"),
        duration_ns=1, status="error", error=message,
    )  # fmt: skip
    tracked.write([failed])
    assert {v["state"] for v in _rows(store).values()} == {
        "confirmed", "running", "degraded", "unconfirmed"
    }  # fmt: skip


def test_the_server_is_given_through_pbs_server(store: Store, fake: Path) -> None:
    stage(fake, "reservations", DATA / "pbs_rstat_f.txt")
    ctx = CollectContext(host="h")
    with pytest.raises(CommandFailed, match="cannot connect to server other"):
        _collector(server="other").collect(ctx)
    assert (fake / "calls.log").read_text().splitlines()[-1] == "pbs_rstat -f"


def test_migration_0014_downgrades_and_upgrades_with_data(store: Store, fake: Path) -> None:
    stage(fake, "reservations", DATA / "pbs_rstat_f.txt")
    _collect(TrackedStore(store), _collector(), "2026-12-07T20:00:00")
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0013")
    tables = set(sa.inspect(store.engine).get_table_names())
    assert "reservations" not in tables
    assert "reservation_history" not in tables
    assert "jobs" in tables
    with store.engine.begin() as conn:
        upgrade(conn)
    assert _rows(store) == {}
    _collect(TrackedStore(store), _collector(), "2026-12-07T20:00:00")
    assert len(_rows(store)) == 5
