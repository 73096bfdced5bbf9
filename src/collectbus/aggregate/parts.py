"""How an aggregate's groups are stored: a base row plus a row per update.

A group's sketches hold hundreds of buckets, while one update changes a few
dozen of them. So a group is stored as rows (``aggregate_parts``): a base row
with the full sketches, and one row per update that touched it since, with the
group's totals after that update and what it changed in the sketches: an
update inserts one small row per group and rewrites nothing. A group is
*folded* (one base row written, the others deleted) a few groups per update
(:func:`choose_folds`), so that no update rewrites every sketch
and no group piles up rows. Readers take the newest row's totals and add the
sketches up.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from collectbus.aggregate.sketch import LogSketch
from collectbus.aggregate.state import GroupState, sketches_from_text, sketches_text
from collectbus.store.schema import aggregate_parts

#: Rows per statement for IN lists and bulk writes.
CHUNK = 500
#: A group with this many rows past its base may be folded by an update that
#: touches it.
FOLD_AT = 16
#: A group with this many rows past its base is folded by the next update
#: touching it.
MAX_PARTS = 64
#: Updates fold one group for every this many groups they touch (the share
#: carried from one update to the next): a group touched by every update is
#: folded about once in this many.
FOLD_SHARE = 32

_INSERT_PART = (
    'INSERT INTO aggregate_parts (name, group_key, part, "count", errors, measures, sketches)'
    " VALUES (:name, :group_key, :part, :count, :errors, :measures, :sketches)"
)
_DROP_PARTS = "DELETE FROM aggregate_parts WHERE name = :name AND group_key = :group_key"


def load_groups(
    conn: Connection, name: str, measures: Sequence[str], keys: Iterable[str] | None = None
) -> dict[str, GroupState]:
    """The stored groups of an aggregate: all of them, or those with the given
    keys. A group's totals are its newest row's; its sketches, the sum of
    its rows'."""
    c = aggregate_parts.c
    query = (
        select(c.group_key, c.part, c.count, c.errors, c.measures, c.sketches)
        .where(c.name == name)
        .order_by(c.group_key, c.part)
    )
    if keys is None:
        rows = list(conn.execute(query))
    else:
        wanted = list(keys)
        rows = []
        query = query.where(c.group_key.in_(bindparam("keys", expanding=True)))
        for i in range(0, len(wanted), CHUNK):
            rows += conn.execute(query, {"keys": wanted[i : i + CHUNK]}).all()
    newest: dict[str, Sequence[Any]] = {}
    sketches: dict[str, list[LogSketch]] = {}
    parts: dict[str, int] = {}
    for row in rows:
        key = row[0]
        newest[key] = row
        found = sketches_from_text(row[5])
        if key in sketches:
            for mine, part in zip(sketches[key], found, strict=True):
                mine.merge(part)
        else:
            sketches[key] = found
        parts[key] = parts.get(key, 0) + (1 if row[1] else 0)
    groups: dict[str, GroupState] = {}
    for key, last in newest.items():
        group = groups[key] = GroupState.from_row(last[2], last[3], last[4], measures)
        group.parts = parts[key]
        for state, sketch in zip(group.measures, sketches[key], strict=True):
            state.sketch = sketch
    return groups


def choose_folds(
    groups: Mapping[str, GroupState], touched: Collection[str], update: int
) -> set[str]:
    """The touched groups the ``update``-th update folds: one per
    :data:`FOLD_SHARE` groups touched, those with the most rows past
    :data:`FOLD_AT`, and every one at :data:`MAX_PARTS`. The share is kept
    across updates (an update touching 20 groups folds one in 5 of every 8
    updates), so that each update costs the same, and each group has between
    FOLD_AT and about FOLD_AT + FOLD_SHARE rows."""
    n = len(touched)
    budget = (update + 1) * n // FOLD_SHARE - update * n // FOLD_SHARE
    ranked = sorted(
        ((groups[k].parts, k) for k in touched if k in groups and groups[k].parts >= FOLD_AT),
        reverse=True,
    )
    return {k for i, (parts, k) in enumerate(ranked) if i < budget or parts >= MAX_PARTS}


def delete_groups(conn: Connection, name: str, groups: Mapping[str, GroupState]) -> None:
    c = aggregate_parts.c
    gone = [key for key, g in groups.items() if g.count <= 0]
    for i in range(0, len(gone), CHUNK):
        conn.execute(
            delete(aggregate_parts).where(c.name == name, c.group_key.in_(gone[i : i + CHUNK]))
        )


def part_statements(
    name: str,
    measures: Sequence[str],
    version: int,
    groups: Mapping[str, GroupState],
    sketch_deltas: Mapping[str, str],
    *,
    folded: Collection[str],
    replaced: bool,
) -> list[tuple[str, Sequence[Mapping[str, object]]]]:
    """Each live group an update changed gets a row: folded groups, a base
    row (part 0) with their full sketches, after their rows are deleted
    (unless all rows were, ``replaced``); the others, a row numbered
    ``version`` with their totals and what changed in their sketches
    (``sketch_deltas``, as stored)."""
    rows: list[dict[str, object]] = []
    drops: list[dict[str, object]] = []
    unchanged = sketches_text([LogSketch() for _ in measures])
    for key, group in groups.items():
        if group.count <= 0:
            continue
        if key in folded:
            part, body = 0, group.sketches_text()
            if not replaced:
                drops.append({"name": name, "group_key": key})
        else:
            part, body = version, sketch_deltas.get(key, unchanged)
        rows.append(
            {"name": name, "group_key": key, "part": part, "count": group.count,
             "errors": group.errors, "measures": group.measures_json(measures),
             "sketches": body}
        )  # fmt: skip
    return [(_DROP_PARTS, drops), (_INSERT_PART, rows)]
