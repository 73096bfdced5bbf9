"""Collection events as ``collection_log`` rows."""

from __future__ import annotations

import json
from collections.abc import Sequence

from collectbus.records import CollectionEvent


def details_json(details: Sequence[tuple[str, str]]) -> str | None:
    """``CollectionEvent.details`` as the JSON object ``collection_log.details``
    keeps: key to value, in the order noted; the values of a key noted more than
    once are joined with ``"; "``. None when nothing was noted."""
    if not details:
        return None
    out: dict[str, str] = {}
    for key, value in details:
        out[key] = f"{out[key]}; {value}" if key in out else value
    return json.dumps(out, ensure_ascii=False)


def event_row(event: CollectionEvent) -> dict[str, object]:
    """The ``collection_log`` row of one collection."""
    return {
        "source": event.source,
        "host": event.host,
        "started_ns": event.started_ns,
        "duration_ns": event.duration_ns,
        "status": event.status,
        "records": event.records,
        "error": event.error,
        "stale": event.stale,
        "details": details_json(event.details),
    }


#: The ``collection_log`` columns that :func:`event_row` fills, in its order.
EVENT_COLUMNS = tuple(
    event_row(CollectionEvent(source="", host="", started_ns=0, duration_ns=0, status=""))
)
