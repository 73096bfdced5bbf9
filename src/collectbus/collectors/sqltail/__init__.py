"""sqltail: incremental aggregates over a table of another SQLite or PostgreSQL database.

The source is declared in an ``[[aggregates]]`` entry with a ``source`` URL
(see ``README.md`` and ``sqltail.sample.toml`` next to this file) and is
aggregated by the engine of :mod:`collectbus.aggregate`: opened read-only,
read from a snapshot, with a ledger of the still-open rows so that edits and
deletes are retracted exactly. :func:`specs_from_config` turns the
configuration into :class:`~collectbus.aggregate.AggregateSpec` objects.
"""

from __future__ import annotations

from collectbus.aggregate.spec import AggregateSpec, spec_from_mapping
from collectbus.config import Config


def specs_from_config(config: Config, *, tailed_only: bool = False) -> list[AggregateSpec]:
    """Every configured aggregate (or only those with a ``source``) as a spec."""
    return [
        spec_from_mapping(a.model_dump(), where=f"aggregates.{i}")
        for i, a in enumerate(config.aggregates)
        if a.source is not None or not tailed_only
    ]


__all__ = ["specs_from_config"]
