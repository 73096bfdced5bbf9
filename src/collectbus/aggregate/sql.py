"""The SQL an aggregate runs, written once for SQLite and PostgreSQL.

Every path reads a row's *contribution* through the same expressions: whether
it passes the filters, its group key, whether it is an error, and each
measure's value with its sketch bucket (:func:`~collectbus.aggregate.sketch.bucket_sql`).
New rows, trigger-logged old values and the full refresh therefore agree to
the bit.

Query plans (docs/architecture.md, "Pitfalls"): SQLite answers
``updated > ? AND id <= ?`` with a rowid range scan over the whole table, so
the id bound is written ``+id <= ?``, which keeps it out of index selection and
lets the ``updated`` index drive. Identifiers are checked by
:mod:`~collectbus.aggregate.spec` and quoted; filter values are rendered as
escaped literals (they come from the configuration, not from rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from collectbus.aggregate.driver import id_list
from collectbus.aggregate.sketch import bucket_sql
from collectbus.aggregate.spec import AggregateSpec, Scalar

Dialect = Literal["sqlite", "postgresql"]

#: SQLite's full recompute groups rows by blocks of ``2 ** ID_BLOCK_BITS``
#: ids: each row it returns holds the sketch codes of at most that many rows.
ID_BLOCK_BITS = 16
#: A read-only source's closed rows are checked by blocks of ``2 ** CHECK_BLOCK_BITS``
#: ids (:mod:`~collectbus.aggregate.blocks`).
CHECK_BLOCK_BITS = 12
#: The definition of :meth:`AggregateSql.term` the recorded block digests were
#: summed with: digests of another definition are recomputed (a refresh).
TERM_VERSION = 2
#: Below any id a table holds: the lower bound of a range over every row.
BELOW_ALL = -(2**62)


def q(name: str) -> str:
    """A quoted identifier (names are already checked to be plain)."""
    return f'"{name}"'


def literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class AggregateSql:
    """The statements of one aggregate on one dialect."""

    spec: AggregateSpec
    dialect: Dialect
    #: PostgreSQL: the source is a table whose rows carry a version (an
    #: ordinary table or a materialized view, not a view): each row's
    #: ``ctid`` and ``xmin``, which any write of the row changes. An open
    #: row is then compared by version, not by :meth:`digest`
    #: (:meth:`changed_rows`).
    versions: bool = False

    # ------------------------------------------------------------ pieces

    def _col(self, name: str, prefix: str = "") -> str:
        return f"{prefix}{q(name)}"

    def passes(self, prefix: str = "") -> str:
        """1 when the row passes every filter, else 0."""
        if not self.spec.filters:
            return "1"
        parts = [
            f"{self._col(c, prefix)} IN ({', '.join(literal(v) for v in vs)})"
            for c, vs in self.spec.filters
        ]
        return f"CASE WHEN {' AND '.join(parts)} THEN 1 ELSE 0 END"

    def error(self, prefix: str = "") -> str:
        """1 when the row counts as an error, else 0."""
        column = self.spec.error_column
        if column is None:
            return "0"
        cond = f"{self._col(column, prefix)} IS NOT NULL"
        if self.spec.error_values:
            values = ", ".join(literal(v) for v in self.spec.error_values)
            cond = f"{self._col(column, prefix)} IN ({values})"
        return f"CASE WHEN {cond} THEN 1 ELSE 0 END"

    def error_count(self) -> str:
        """The number of errors among a group's rows: ``count`` of the error
        column when any value counts (no expression per row), else a sum."""
        column = self.spec.error_column
        if column is not None and not self.spec.error_values:
            return f"count({q(column)})"
        return f"sum({self.error()})"

    def contribution_columns(self, prefix: str = "") -> list[str]:
        """pass, keys..., error, then value and bucket of each measure."""
        cols = [self.passes(prefix)]
        cols += [self._col(k, prefix) for k in self.spec.keys]
        cols.append(self.error(prefix))
        for m in self.spec.measures:
            cols += [self._col(m, prefix), bucket_sql(self._col(m, prefix))]
        return cols

    @property
    def table(self) -> str:
        return q(self.spec.table)

    @property
    def id(self) -> str:
        return q(self.spec.id_column)

    # ------------------------------------------------------------ reads

    def max_id(self) -> str:
        return f"SELECT max({self.id}) FROM {self.table}"

    def max_id_upto(self) -> str:
        """The highest id present at or below ``:hi``."""
        return f"SELECT max({self.id}) FROM {self.table} WHERE {self.id} <= :hi"

    def count_between(self) -> str:
        return f"SELECT count(*) FROM {self.table} WHERE {self.id} > :lo AND {self.id} <= :hi"

    def ids_between(self) -> str:
        return (
            f"SELECT {self.id} FROM {self.table} WHERE {self.id} > :lo AND {self.id} <= :hi"
            f" ORDER BY {self.id}"
        )

    def open_flag(self) -> str:
        """A read-only source: 1 while a row can still change (``open_when``,
        or ``open_column`` NULL), else 0; 0 when neither is configured (rows
        are then open by age, :mod:`~collectbus.aggregate.tail`)."""
        spec = self.spec
        if spec.open_when:
            return f"CASE WHEN ({spec.open_when.strip()}) THEN 1 ELSE 0 END"
        if spec.open_column:
            return f"CASE WHEN {q(spec.open_column)} IS NULL THEN 1 ELSE 0 END"
        return "0"

    def _text_hash(self, value: str) -> str:
        """An integer from a text: its length and first and last characters."""
        t = f"CAST({value} AS TEXT)"
        if self.dialect == "sqlite":
            first, last = f"unicode({t})", f"unicode(substr({t}, -1))"
        else:
            first, last = f"ascii({t})", f"ascii(right({t}, 1))"
        return f"(length({t}) * 131 + {first} * 7 + {last})"

    def term(self) -> str:
        """A row's check term: an integer from everything it contributes (the
        filters, keys, error flag, each measure's value or its NULL), summed
        per block of ids (:meth:`block_digests`). The same database computes
        it for every row, so the sums are exact. PostgreSQL: its own hash of
        each key's text and of each measure's value, so that any change of
        either changes the term; SQLite, which has no hash function: a key's
        length and first and last characters, a measure to a thousandth.
        Either costs little more than the scan of the block
        (:data:`TERM_VERSION` names the current definition)."""
        spec = self.spec
        parts = ["1", f"{self.passes()} * 2", f"{self.error()} * 5"]
        pg = self.dialect == "postgresql"
        for j, k in enumerate(spec.keys):
            hashed = f"hashtext(CAST({q(k)} AS TEXT))::bigint" if pg else self._text_hash(q(k))
            parts.append(f"coalesce({hashed}, 0) * {j + 7}")
        for i, m in enumerate(spec.measures):
            x = f"CAST({q(m)} AS DOUBLE PRECISION)"
            if pg:
                value = f"hashfloat8({x})::bigint"
            else:
                scaled = (
                    f"CASE WHEN abs({x}) < 1e12 THEN {x} * 1000"
                    f" WHEN abs({x}) < 1e30 THEN {x} / 1e15 ELSE 0 END"
                )
                value = f"CAST({scaled} AS BIGINT) % 1000003"
            parts.append(f"coalesce({value} * {i + 11}, {3 * (i + 11)})")
        return f"({' + '.join(parts)})"

    @property
    def digests(self) -> bool:
        """Whether a row read holds its :meth:`digest` (after the check term;
        with :attr:`by_version`, after its version): rows open by state in a
        PostgreSQL source."""
        return self.dialect == "postgresql" and self.spec.open_by_state

    @property
    def by_version(self) -> bool:
        """Whether open rows are compared by version (:attr:`versions`): a
        row read then holds, after its check term, its ``ctid`` and ``xmin``
        (as text), then its :meth:`digest`."""
        return self.digests and self.versions

    def digest(self) -> str:
        """PostgreSQL: a 64-bit hash of the text of everything a row
        contributes (the filters, keys, error flag, each measure's value)
        and of its open flag, to tell whether an open row changed since it
        was read (:meth:`changed_rows`)."""
        cols = [self.passes(), *map(q, self.spec.keys), self.error(), *map(q, self.spec.measures)]
        return f"hashtextextended(CAST(ROW({', '.join(cols)}, {self.open_flag()}) AS TEXT), 0)"

    def _column_list(self) -> list[str]:
        """What a row read holds after its id: its contribution; for a
        read-only source whether it is open, its check term and (PostgreSQL,
        rows open by state) its digest; its ``updated_column`` last."""
        cols = self.contribution_columns()
        if self.spec.external:
            cols += [self.open_flag(), self.term()]
        if self.by_version:
            cols += [f"CAST({self.table}.ctid AS TEXT)", f"CAST({self.table}.xmin AS TEXT)"]
        if self.digests:
            cols.append(self.digest())
        if self.spec.updated_column:
            cols.append(q(self.spec.updated_column))
        return cols

    def _columns(self) -> str:
        return ", ".join(self._column_list())

    @property
    def row_width(self) -> int:
        """How many columns a row read holds: its id and :meth:`_column_list`."""
        return 1 + len(self._column_list())

    @property
    def packed_width(self) -> int:
        """How many columns a row of :meth:`packed_totals` holds."""
        return len(self._packed_columns())

    def _select(self) -> str:
        return f"SELECT {self.id}, {self._columns()} FROM {self.table}"

    def changed_rows(self) -> str:
        """PostgreSQL: of the rows whose ids are in ``:ids``, those whose
        :meth:`digest` differs from the one at the same place in ``:digests``
        (NULL: not known), as :meth:`rows_with_ids` reads them, and those
        vanished (NULLs); each with the id sent, last. Both arrays as
        :func:`~collectbus.aggregate.driver.pg_array` writes them."""
        assert self.digests
        seen, at = "collectbus_seen", f"{self.table}.{self.id}"
        if self.by_version:
            return self._changed_versions()
        return (
            f"SELECT {at}, {self._columns()}, {seen}_id"
            f" FROM unnest(CAST(:ids AS BIGINT[]), CAST(:digests AS BIGINT[]))"
            f" AS {seen}({seen}_id, {seen}_digest)"
            f" LEFT JOIN {self.table} ON {at} = {seen}_id"
            f" WHERE {at} IS NULL OR {self.digest()} IS DISTINCT FROM {seen}_digest"
        )

    def _changed_versions(self) -> str:
        """:meth:`changed_rows` by version (:attr:`by_version`): of the rows
        whose ids are in ``:ids``, those no longer at the place (``ctid``) in
        ``:tids`` with the ``xmin`` in ``:xmins`` (NULL: not known) at the
        same place of each array: any write of a row moves it to a new
        version, so the others are the same as last read. Each is looked up
        by its place (no walk down the primary key, no expression computed);
        the rows that changed (also those written in a column the aggregate
        does not read: the caller tells them by their :meth:`digest`) and
        the vanished ones (NULLs) are read as :meth:`changed_rows` reads
        them."""
        seen, at, now = "collectbus_seen", f"{self.table}.{self.id}", "collectbus_now"
        return (
            f"SELECT {at}, {self._columns()}, {seen}_id"
            f" FROM unnest(CAST(:ids AS BIGINT[]), CAST(:tids AS TID[]), CAST(:xmins AS XID[]))"
            f" AS {seen}({seen}_id, {seen}_tid, {seen}_xmin)"
            f" LEFT JOIN {self.table} ON {at} = {seen}_id"
            f" WHERE NOT EXISTS (SELECT FROM {self.table} AS {now}"
            f" WHERE {now}.ctid = {seen}_tid AND {now}.xmin = {seen}_xmin"
            f" AND {now}.{self.id} = {seen}_id)"
        )

    def rows_between(self) -> str:
        """Rows with ``:lo < id <= :hi`` (new rows, and open ones)."""
        return f"{self._select()} WHERE {self.id} > :lo AND {self.id} <= :hi ORDER BY {self.id}"

    def open_rows_upto(self) -> str:
        """Every open row with ``id <= :hi`` (a read-only source's rebuild)."""
        return f"{self._select()} WHERE {self.open_flag()} = 1 AND {self.id} <= :hi"

    def open_rows_between(self) -> str:
        """The open rows with ``:lo < id <= :hi`` (new rows that stay in the ledger)."""
        return (
            f"{self._select()} WHERE {self.id} > :lo AND {self.id} <= :hi"
            f" AND {self.open_flag()} = 1"
        )

    def block_digests(self) -> str:
        """Per block of ``2 ** CHECK_BLOCK_BITS`` ids, of the closed rows with
        ``:lo < id <= :hi``: count, sum of ids and sum of :meth:`term`. A
        range of the primary key, rows read in id order."""
        closed = f" AND {self.open_flag()} = 0" if self.spec.open_by_state else ""
        if self.dialect == "postgresql":
            return self._digests_by_block(closed)
        block = f"({self.id} >> {CHECK_BLOCK_BITS})"
        return (
            f"SELECT {block}, count(*), sum({self.id}), sum({self.term()}) FROM {self.table}"
            f" WHERE {self.id} > :lo AND {self.id} <= :hi{closed} GROUP BY {block}"
        )

    def _digests_by_block(self, closed: str) -> str:
        """PostgreSQL's :meth:`block_digests`: one aggregate per block, over
        its range of the primary key, the blocks found by walking the index
        from one block's end to the next id (a block without rows costs one
        probe). Half the time of a ``GROUP BY`` of the range, which sorts or
        hashes every row by its block."""
        bits, i, t = CHECK_BLOCK_BITS, self.id, self.table
        span = (1 << bits) - 1
        b = "collectbus_block"
        first = f"SELECT min({i}) FROM {t} WHERE {i} > :lo AND {i} <= :hi"
        after = f"SELECT min({i}) FROM {t} WHERE {i} > {b} * {1 << bits} + {span} AND {i} <= :hi"
        lo = f"greatest(:lo, {b} * {1 << bits} - 1)"
        hi = f"least(:hi, {b} * {1 << bits} + {span})"
        return (
            f"WITH RECURSIVE collectbus_blocks({b}) AS (SELECT ({first}) >> {bits}"
            f" UNION ALL SELECT ({after}) >> {bits} FROM collectbus_blocks WHERE {b} IS NOT NULL)"
            f" SELECT {b}, d.rows, d.id_sum, d.term_sum FROM collectbus_blocks, LATERAL"
            f" (SELECT count(*) AS rows, sum({i}) AS id_sum, sum({self.term()}) AS term_sum"
            f" FROM {t} WHERE {i} > {lo} AND {i} <= {hi}{closed}) AS d"
            f" WHERE {b} IS NOT NULL AND d.rows > 0"
        )

    def split_digests(self) -> str:
        """:meth:`block_digests` of ``:lo < id <= :hi``, each block split in
        two rows by whether ``id > :mid``: the newest blocks' digests as the
        source has them (both rows added) and, from the same scan, the new
        closed rows past the checkpoint ``:mid`` (the second row), with their
        count."""
        closed = f" AND {self.open_flag()} = 0" if self.spec.open_by_state else ""
        block = f"({self.id} >> {CHECK_BLOCK_BITS})"
        new = f"CASE WHEN {self.id} > :mid THEN 1 ELSE 0 END"
        return (
            f"SELECT {block}, {new}, count(*), sum({self.id}), sum({self.term()})"
            f" FROM {self.table} WHERE {self.id} > :lo AND {self.id} <= :hi{closed}"
            f" GROUP BY {block}, {new}"
        )

    def rows_in_ranges(self) -> str:
        """PostgreSQL: the rows whose ids lie in one of the ranges ``:los[i]``
        to ``:his[i]`` (two arrays' texts, :func:`~collectbus.aggregate.driver.id_list`):
        the pending ids looked up, each range a walk of the primary key."""
        r = "collectbus_range"
        return (
            f"SELECT {self.table}.{self.id}, {self._columns()}"
            f" FROM unnest(CAST(:los AS BIGINT[]), CAST(:his AS BIGINT[])) AS {r}({r}_lo, {r}_hi)"
            f" JOIN {self.table} ON {self.table}.{self.id} >= {r}_lo"
            f" AND {self.table}.{self.id} <= {r}_hi"
        )

    def ids_if_gaps(self) -> str:
        """PostgreSQL: the ids with ``:lo < id <= :hi``, only if some id of
        that range up to the highest id is missing (none otherwise: the usual
        case costs a count of the new rows' index entries)."""
        i, t = self.id, self.table
        where = f"{i} > :lo AND {i} <= :hi"
        return (
            f"SELECT {i} FROM {t} WHERE {where}"
            f" AND (SELECT count(*) FROM {t} WHERE {where})"
            f" < least(:hi, (SELECT max({i}) FROM {t})) - :lo"
        )

    def probe_open(self) -> str:
        """A statement that fails unless ``open_when`` is valid on the table."""
        return f"SELECT {self.open_flag()} FROM {self.table} WHERE 1 = 0"

    def changes(self) -> str:
        """Every change logged for the aggregate, in order: seq, row id, the
        row's contribution before the change and after it (see
        :meth:`create_triggers`)."""
        return (
            "SELECT seq, row_id, old, new_contribution FROM aggregate_changes"
            " WHERE name = :name ORDER BY seq"
        )

    def rows_with_ids(self) -> str:
        """The rows whose ids are in ``:ids`` (:meth:`id_list`): each row's id
        and contribution now. One statement text whatever the ids, so it is
        prepared once: the ids are an array probed through the primary key
        (PostgreSQL), or a JSON array SQLite reads with ``json_each``."""
        if self.dialect == "postgresql":
            return f"{self._select()} WHERE {self.id} = ANY(CAST(:ids AS BIGINT[]))"
        return f"{self._select()} WHERE {self.id} IN (SELECT value FROM json_each(:ids))"

    def id_list(self, ids: Sequence[int]) -> str:
        """The ``:ids`` parameter of :meth:`rows_with_ids` (an array's text:
        a list is several times slower to send, element by element)."""
        return id_list(self.dialect, ids)

    def rows_updated(self) -> str:
        """Closed rows (``id <= :hi``) changed after the watermark ``:mark``."""
        plus = "+" if self.dialect == "sqlite" else ""
        assert self.spec.updated_column is not None
        return (
            f"{self._select()} WHERE {q(self.spec.updated_column)} > :mark"
            f" AND {plus}{self.id} <= :hi"
        )

    def max_updated(self) -> str:
        assert self.spec.updated_column is not None
        return f"SELECT max({q(self.spec.updated_column)}) FROM {self.table}"

    def _from(self, ranged: bool) -> str:
        """The table; for new rows in SQLite, ``NOT INDEXED``: the rowid range,
        never a scan of the aggregate's index for its GROUP BY order."""
        return f"{self.table} NOT INDEXED" if ranged and self.dialect == "sqlite" else self.table

    def _where_counted(self, ranged: bool = False) -> str:
        conds = [f"{self.id} <= :hi"]
        if ranged:
            conds.insert(0, f"{self.id} > :lo")
        if self.spec.filters:
            conds.append(f"{self.passes()} = 1")
        return " AND ".join(conds)

    @cache  # noqa: B019 -- a few statements per aggregate, built once
    def full_totals(self) -> str:
        """PostgreSQL's full recompute: per group, of every row up to ``:hi``,
        count, errors, then n, sum, min, max of each measure.

        With measures, the groups are split by the first measure's sketch
        bucket (a column after the keys), so that one hashed scan yields the
        totals and that sketch; the caller adds the bucket rows up per group.
        """
        keys = [q(k) for k in self.spec.keys]
        if self.spec.measures:
            keys.append(bucket_sql(q(self.spec.measures[0])))
        cols = [*keys, *self._totals()]
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        return f"SELECT {', '.join(cols)} FROM {self.table} WHERE {self._where_counted()}{group}"

    @cache  # noqa: B019 -- a few statements per aggregate, built once
    def full_buckets(self, measure: str) -> str:
        """PostgreSQL: per group and bucket of ``measure``, the count."""
        keys = [q(k) for k in self.spec.keys]
        bucket = bucket_sql(q(measure))
        where = f"{self._where_counted()} AND {q(measure)} IS NOT NULL"
        group = ", ".join([*keys, bucket])
        cols = ", ".join([*keys, bucket, "count(*)"])
        return f"SELECT {cols} FROM {self.table} WHERE {where} GROUP BY {group}"

    def _totals(self) -> list[str]:
        cols = ["count(*)", self.error_count()]
        for m in self.spec.measures:
            cols += [f"count({q(m)})", f"sum({q(m)})", f"min({q(m)})", f"max({q(m)})"]
        return cols

    def _packed_columns(self) -> list[str]:
        cols = [*(q(k) for k in self.spec.keys), *self._totals()]
        for m in self.spec.measures:
            agg = "json_agg" if self.dialect == "postgresql" else "json_group_array"
            cols.append(f"{agg}({bucket_sql(q(m))}) FILTER (WHERE {q(m)} IS NOT NULL)")
            if self.dialect == "postgresql":
                cols[-1] = f"({cols[-1]})::text"
        return cols

    def _packed(self, *, blocks: bool) -> str:
        keys = [q(k) for k in self.spec.keys]
        cols = self._packed_columns()
        group = [*keys, self.block] if blocks else keys
        by = f" GROUP BY {', '.join(group)}" if group else ""
        ranged = not blocks  # new rows, or every row
        where = self._where_counted(ranged)
        return f"SELECT {', '.join(cols)} FROM {self._from(ranged)} WHERE {where}{by}"

    @cache  # noqa: B019 -- a few statements per aggregate, built once
    def packed_totals(self) -> str:
        """The rows past ``:lo`` up to ``:hi``, one row per group: count,
        errors, n, sum, min and max of each measure, then for each measure the
        sketch bucket codes of its values, as the text of a JSON array (the
        caller counts them).

        A thousand new rows fall in about as many (group, bucket) pairs:
        grouping by the bucket too would cost a second sort and a Python row
        per pair; one text per group and measure costs neither, and a JSON
        array is the quickest text for Python to read back.
        """
        return self._packed(blocks=False)

    @cache  # noqa: B019 -- a few statements per aggregate, built once
    def packed_blocks(self) -> str:
        """SQLite's full recompute: what :meth:`packed_totals` gives, of every
        row up to ``:hi``, per group and block of ``2 ** ID_BLOCK_BITS`` ids.
        Read in the order of the aggregate's index (:meth:`create_index`),
        it is one scan of the index, with no sort, and no row holds the codes
        of more than one block."""
        return self._packed(blocks=True)

    @property
    def block(self) -> str:
        """A row's block of ids: the index's second part (:meth:`create_index`)."""
        return f"({self.id} >> {ID_BLOCK_BITS})"

    def extremes(self, measure: str) -> str:
        """min and max of ``measure`` in one group (keys bound as ``:k0``,
        ``:k1``...); in SQLite, a range of the aggregate's index."""
        same = "IS" if self.dialect == "sqlite" else "IS NOT DISTINCT FROM"
        conds = [f"{q(k)} {same} :k{i}" for i, k in enumerate(self.spec.keys)]
        conds.append(self._where_counted())
        col = q(measure)
        return f"SELECT min({col}), max({col}) FROM {self.table} WHERE {' AND '.join(conds)}"

    # ------------------------------------------------------------ index

    @property
    def index_name(self) -> str:
        return f"collectbus_agg_{self.spec.name}_rows"

    @property
    def legacy_index_name(self) -> str | None:
        """SQLite: the index an earlier version installed, replaced when found."""
        return f"collectbus_agg_{self.spec.name}_cover" if self.dialect == "sqlite" else None

    def legacy_index_query(self) -> tuple[str, dict[str, str]] | None:
        """The query (and its parameters) finding :attr:`legacy_index_name`."""
        if self.legacy_index_name is None:
            return None
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = :name"
        return query, {"name": self.legacy_index_name}

    def create_index(self) -> list[str]:
        """SQLite: an index on the keys, then the row's block of ids, then the
        id, holding every other column the full recompute reads.

        The full recompute (:meth:`packed_blocks`) then reads it in its GROUP
        BY order, with no sort of the table. And as ids only grow, a new row's
        entry goes at the end of its group's range: a thousand new rows of
        twenty groups change about twenty pages of it. An index in value order
        (the keys, then the sketch bucket) would spare the full recompute its
        counting of codes, but put each new row on a page of its own: every
        insert, and every update after it, would write and read a page per
        row. PostgreSQL groups by hashing and needs none.
        """
        if self.dialect != "sqlite" or not self.spec.measures:
            return []
        spec = self.spec
        cols = [q(k) for k in spec.keys] + [self.block, self.id]
        extra = [*spec.measures, *(c for c, _ in spec.filters)]
        if spec.error_column:
            extra.append(spec.error_column)
        skip = {*spec.keys, spec.id_column}
        cols += [q(c) for c in dict.fromkeys(extra) if c not in skip]
        return [
            f"CREATE INDEX IF NOT EXISTS {q(self.index_name)} ON {self.table} ({', '.join(cols)})"
        ]

    def drop_index(self) -> list[str]:
        if self.dialect != "sqlite":
            return []
        names = [self.index_name, self.legacy_index_name]
        return [f"DROP INDEX IF EXISTS {q(name)}" for name in names if name]

    # ------------------------------------------------------------ triggers

    def _contribution_json(self, row: str) -> str:
        """The JSON array of a row's contribution, ``row`` being ``OLD`` or ``NEW``."""
        cols = self.contribution_columns(f"{row}.")
        if self.dialect == "postgresql":
            return f"json_build_array({', '.join(cols)})::text"
        # SQLite's JSON keeps 15 digits of a REAL; 17 round-trip exactly.
        exact = [
            f"CASE WHEN typeof({c}) = 'real' THEN printf('%.17g', {c}) ELSE {c} END"
            if i >= len(self.spec.keys) + 2 and (i - len(self.spec.keys) - 2) % 2 == 0
            else c
            for i, c in enumerate(cols)
        ]
        return f"json_array({', '.join(exact)})"

    @property
    def trigger_name(self) -> str:
        return f"collectbus_agg_{self.spec.name}"

    def drop_triggers(self) -> list[str]:
        name = self.trigger_name
        if self.dialect == "postgresql":
            return [
                f"DROP TRIGGER IF EXISTS {name} ON {self.table}",
                f"DROP FUNCTION IF EXISTS {name}()",
            ]
        return [
            f"DROP TRIGGER IF EXISTS {name}_u",
            f"DROP TRIGGER IF EXISTS {name}_d",
            f"DROP TRIGGER IF EXISTS {name}_i",
        ]

    def create_triggers(self) -> list[str]:
        """Triggers logging, for each edited or deleted row, its contribution
        before the change (``old``) and after it (``new_contribution``; the
        JSON ``null`` for a delete): an update then needs nothing but the log.
        An edit of the id itself is logged as the old id's delete and the new
        id's arrival (an ``old`` that counts for nothing: ``[0]``).

        SQLite hands the highest id present plus one to a new row, so once the
        newest rows are deleted a new row can take an id at or below the
        checkpoint's, which the watermark never reads again: such an insert is
        logged as an arrival too (``{name}_i``, which compares the id with the
        checkpoint's ``last_id``). PostgreSQL's sequences never give an id twice."""
        spec = self.spec
        watched = ", ".join(q(c) for c in spec.columns() if c != spec.updated_column)
        name, rid = self.trigger_name, self.id
        old, new = self._contribution_json("OLD"), self._contribution_json("NEW")
        log = "INSERT INTO aggregate_changes (name, row_id, old, new_contribution)"
        label = literal(spec.name)
        if self.dialect == "postgresql":
            body = (
                f"IF TG_OP = 'UPDATE' AND NEW.{rid} IS NOT DISTINCT FROM OLD.{rid} THEN"
                f" {log} VALUES ({label}, OLD.{rid}, {old}, {new});"
                f" ELSE {log} VALUES ({label}, OLD.{rid}, {old}, 'null');"
                f" IF TG_OP = 'UPDATE' THEN {log} VALUES ({label}, NEW.{rid}, '[0]', {new});"
                " END IF; END IF;"
            )
            return [
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
                f"BEGIN {body} RETURN NULL; END $fn$",
                f"CREATE TRIGGER {name} AFTER UPDATE OF {watched} OR DELETE ON {self.table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()",
            ]
        moved = f"NEW.{rid} IS NOT OLD.{rid}"
        return [
            f"CREATE TRIGGER {name}_u AFTER UPDATE OF {watched} ON {self.table} BEGIN"
            f" {log} SELECT {label}, OLD.{rid}, {old}, CASE WHEN {moved} THEN 'null' ELSE {new} END;"
            f" {log} SELECT {label}, NEW.{rid}, '[0]', {new} WHERE {moved}; END",
            f"CREATE TRIGGER {name}_d AFTER DELETE ON {self.table} BEGIN"
            f" {log} VALUES ({label}, OLD.{rid}, {old}, 'null'); END",
            f"CREATE TRIGGER {name}_i AFTER INSERT ON {self.table}"
            f" WHEN NEW.{rid} <= (SELECT last_id FROM checkpoints WHERE name = {label}) BEGIN"
            f" {log} VALUES ({label}, NEW.{rid}, '[0]', {new}); END",
        ]

    def triggers_current(self, definitions: Sequence[str]) -> bool:
        """Whether installed trigger definitions (SQLite's trigger SQL, or
        PostgreSQL's function source) are this version's: they log the new
        contribution too, and in SQLite an insert under an id already counted."""
        expected = 1 if self.dialect == "postgresql" else 3
        return len(definitions) == expected and all("new_contribution" in d for d in definitions)

    def trigger_definitions(self) -> tuple[str, dict[str, str]]:
        """The query (and its parameters) reading the installed definitions
        :meth:`triggers_current` checks."""
        name = self.trigger_name
        if self.dialect == "postgresql":
            query = "SELECT prosrc FROM pg_proc WHERE proname = lower(:trigger)"
            return query, {"trigger": name}
        query = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN (:u, :d, :i)"
        return query, {"u": f"{name}_u", "d": f"{name}_d", "i": f"{name}_i"}
