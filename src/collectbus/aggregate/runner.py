"""Updating many aggregates: one failing source never stops the others."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collectbus.aggregate.engine import Aggregator, UpdateResult
from collectbus.aggregate.spec import AggregateSpec
from collectbus.errors import CollectBusError
from collectbus.store import Store

log = logging.getLogger("collectbus.aggregate")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One aggregate's update in :func:`run_all`: a result, or the error's one line."""

    name: str
    result: UpdateResult | None = None
    error: str | None = None


def run_all(
    store: Store,
    specs: list[AggregateSpec],
    *,
    refresh: bool = False,
    keep: dict[str, Aggregator] | None = None,
    last_errors: dict[str, str] | None = None,
) -> list[RunOutcome]:
    """Update (or fully refresh) every aggregate; a failing one is logged in one
    line and reported, and the others go on.

    For repeated runs, ``keep`` holds the aggregators between calls (the caller
    closes them) and ``last_errors`` the previous error of each, so that an
    error that persists is logged once, and its end too.
    """
    out: list[RunOutcome] = []
    for spec in specs:
        try:
            agg = keep.get(spec.name) if keep is not None else None
            if agg is None:
                agg = Aggregator(store, spec)
                if keep is not None:
                    keep[spec.name] = agg
            try:
                result = agg.refresh() if refresh else agg.update()
            finally:
                if keep is None:
                    agg.close()
        except CollectBusError as err:
            if last_errors is None or last_errors.get(spec.name) != str(err):
                log.error("%s", err)
            if last_errors is not None:
                last_errors[spec.name] = str(err)
            out.append(RunOutcome(spec.name, error=str(err)))
            continue
        if last_errors is not None and last_errors.pop(spec.name, None) is not None:
            log.warning("aggregate %s: updating again", spec.name)
        out.append(RunOutcome(spec.name, result=result))
    return out
