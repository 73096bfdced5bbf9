"""The JSON API's documents: health, and a host's rates.

``/api/hosts/<host>/rates`` returns the rows ``collectbus host --format json``
prints for the same window: RFC 3339 times, raw numbers, whole bytes, null
where there is no value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from collectbus.errors import StoreError
from collectbus.pipeline import Pipeline
from collectbus.store import Store
from collectbus.timefmt import iso_utc, time_window


def scrub(store: Store, err: StoreError) -> str:
    """The error on one line. Store errors name the database by its masked URL
    already; a password that a driver might echo back is masked too."""
    text = " ".join(str(err).split())
    password = store.engine.url.password
    return text.replace(str(password), "***") if password else text


class ApiError(Exception):
    """A request the API answers with an error status and a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_value(value: object) -> object:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def query_window(query: Mapping[str, str], known: set[str]) -> tuple[int, int]:
    """``since`` and ``until`` of a query (default: the last hour) in ns; a
    parameter not in ``known``, or a bad window, is a 400."""
    unknown = set(query) - known
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    try:
        return time_window(query.get("since", "1h"), query.get("until", "now"))
    except ValueError as err:
        raise ApiError(400, f"bad time window: {err}") from err


def host_rates(store: Store, host: str, query: Mapping[str, str]) -> list[dict[str, object]]:
    """Rate rows of one host in ``since``..``until`` (default: the last hour)."""
    from collectbus.analysis.host import rates

    since_ns, until_ns = query_window(query, {"since", "until"})
    if host not in {str(h["name"]) for h in store.hosts()}:
        raise ApiError(404, f"no host named {host!r} in {store.url}")
    frame = rates(store, host=host, since_ns=since_ns, until_ns=until_ns)
    rows: list[dict[str, object]] = []
    for record in frame.to_dict("records"):
        # The rows of ``collectbus host --format json``, which name their family.
        row: dict[str, object] = {"metric": "summary", "time": iso_utc(int(record["time_ns"]))}
        for key, value in record.items():
            column = str(key)
            if column == "time_ns":
                row[column] = int(value)
            elif column.endswith("_bytes") and isinstance(value, float) and not math.isnan(value):
                row[column] = int(value)  # sizes are whole bytes; NaN made the column float
            else:
                row[column] = _json_value(value)
        rows.append(row)
    return rows


def health(store: Store, pipeline: Pipeline | None) -> tuple[int, dict[str, object]]:
    """(HTTP status, document): 200 when the store answers and the bus, if any, runs.

    ``store.quarantine`` counts the values and rows the database refused and
    shows the newest with their reasons; refused data is reported, not an
    outage, so it leaves the status at 200.

    The store's rows per table are estimates (``rows_estimated``,
    ``rows_method``; :mod:`collectbus.store.rowcounts`): no table is counted,
    so a poll costs the same on any size of store.
    """
    doc: dict[str, object] = {"status": "ok"}
    status = 200
    try:
        doc["store"] = store.status()
    except StoreError as err:
        doc["store"] = {"url": store.url, "error": scrub(store, err)}
        doc["status"] = "unavailable"
        status = 503
    if pipeline is None:
        doc["bus"] = None
        return status, doc
    bus = pipeline.bus.health()
    doc["bus"] = bus.to_dict()
    _store, sink = pipeline.local()
    doc["store_writer"] = {
        "written_collections": sink.written_collections,
        "written_records": sink.written_records,
        "failed_writes": sink.failed_writes,
        "pending": sink.pending,
        "lost_collections": sink.lost_collections,
        # Refused data (never retried): values and rows kept in the store's
        # quarantine table (doc["store"]["quarantine"]), whole collections dropped.
        "quarantined": sink.store.quarantined,
        "refused_collections": sink.refused_collections,
        "last_error": sink.last_error,
    }
    if bus.state != "running" and status == 200:
        doc["status"] = f"bus {bus.state}"
        status = 503
    return status, doc
