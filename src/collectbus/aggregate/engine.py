"""The aggregation engine: update, refresh, reset and backfill one aggregate.

Each update reads the source from one snapshot (:mod:`~collectbus.aggregate.delta`),
applies the −/+ deltas to the groups they touch, recomputes min and max only
where an extreme value left, and then writes the totals and the checkpoint in
one transaction (:mod:`~collectbus.aggregate.checkpoint`). A crash at any
point before the commit changes nothing; after it, everything.

For a table of the collectbus store, the read and the write are that one
short transaction (``BEGIN IMMEDIATE`` in SQLite, ``REPEATABLE READ`` in
PostgreSQL), on a connection the aggregator keeps: an update reads a batch of
new rows, grouped by the database (one row per group), and the logged
changes, so holding the write lock for it costs less than a second
transaction. The groups it touched come from memory (those it wrote last),
else from the store. In PostgreSQL the whole update is two round trips: the
checkpoint with the changes and new rows past the one this object wrote last
(:class:`~collectbus.aggregate.delta.Prefetch`), then the writes with the
COMMIT. An external source (``sqltail``) is read from its own snapshot, and
the totals written after (:mod:`~collectbus.aggregate.tail`); a block of its
closed rows found differing from what was counted
(:mod:`~collectbus.aggregate.blocks`) is repaired at once by a full refresh,
and one runs every ``refresh_every`` (by default an hour) to verify it all.

In SQLite the aggregate installs, with its triggers, an index in the full
recompute's ``GROUP BY`` order holding every column it reads: a full refresh
or a backfill is then one ordered scan of that index, not a sort of the table.

A full refresh reads the whole source from one snapshot, in the same snapshot
catches the incremental state up, compares the two, and swaps the full result
in. A difference is logged, counted in the checkpoint's ``mismatches`` and
repaired by the swap. On SQLite the write lock is held only for the swap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
import collectbus.aggregate.install as install
from collectbus.aggregate.checkpoint import (
    Changes,
    Checkpoint,
    CheckpointConflict,
    checkpoint_query,
    concurrent_update,
    forget,
    load_changes,
    load_checkpoint,
    parse_checkpoint,
    save,
    session_settings,
)
from collectbus.aggregate.delta import (
    Delta,
    Prefetch,
    initial_pending,
    max_id,
    prefetch_reads,
    read_triggered,
    triggered_probes,
)
from collectbus.aggregate.full import full_groups, recompute_extremes
from collectbus.aggregate.parts import choose_folds, load_groups
from collectbus.aggregate.sketch import LogSketch
from collectbus.aggregate.sourcedb import (
    HeldConnection,
    check_source,
    dialect_of,
    has_row_versions,
    open_source,
    snapshot,
    source_errors,
    source_session,
    write_transaction,
)
from collectbus.aggregate.spec import AggregateSpec
from collectbus.aggregate.sql import CHECK_BLOCK_BITS, TERM_VERSION, AggregateSql
from collectbus.aggregate.state import (
    GroupState,
    apply_deltas,
    key_json,
    merge_partial,
    same_group,
    sketch_deltas,
)
from collectbus.aggregate.tail import (
    SnapshotNeeded,
    TailCache,
    TailDelta,
    at_once,
    read_tailed,
    rebuild,
)
from collectbus.clock import Clock, SystemClock
from collectbus.store import Store

log = logging.getLogger("collectbus.aggregate")

#: At most this many groups are kept in memory between updates.
CACHE_GROUPS = 10_000


@dataclass(frozen=True, slots=True)
class UpdateResult:
    name: str
    #: "update", "build" (first run or backfill) or "refresh".
    kind: str
    rows_read: int
    groups_written: int
    last_id: int
    mismatched_groups: int = 0


class Aggregator:
    """One aggregate over its source, kept in the collectbus store."""

    def __init__(self, store: Store, spec: AggregateSpec, *, clock: Clock | None = None) -> None:
        self.store = store
        self.spec = spec
        self.clock = clock or SystemClock()
        self._source = open_source(spec) if spec.external else store.engine
        self.sql = AggregateSql(spec, dialect_of(self._source))
        self._checked = False
        # Triggers and index checked against this version's (once per object).
        self._upgraded = False
        self._verified = False
        # Blocks the last catch-up found differing (a read-only source).
        self._mismatched: list[int] = []
        # The last catch-up found digests of another check term (an upgrade).
        self._stale_terms = False
        # The groups this object last wrote, valid while the checkpoint is at
        # _cache_version: an update then reads no totals back from the store.
        self._cache: dict[str, GroupState] = {}
        self._cache_version: int | None = None
        # The checkpoint this object wrote last: what an update guesses it
        # will read (:class:`~collectbus.aggregate.delta.Prefetch`).
        self._saved: Checkpoint | None = None
        # A read-only source: its ledger and block digests as last written.
        self._tail = TailCache()
        self._held = HeldConnection(store.engine, session=session_settings)
        # A read-only source: the connection its updates read from, kept
        # (and in PostgreSQL, its prepared statements) between updates.
        self._source_held = (
            HeldConnection(self._source, read_only=True, session=source_session)
            if spec.external
            else None
        )

    def close(self) -> None:
        self._held.close()
        if self._source_held is not None:
            self._source_held.close()
        if self.spec.external:
            self._source.dispose()

    def __enter__(self) -> Aggregator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ helpers

    def _spec_json(self) -> str:
        spec = self.spec
        return json.dumps(
            {
                "fingerprint": spec.fingerprint(),
                "source": spec.source,
                "table": spec.table,
                "keys": list(spec.keys),
                "measures": list(spec.measures),
            }
        )

    @contextmanager
    def _read(self, action: str) -> Iterator[tuple[Connection, Connection]]:
        """(source, store) connections in one snapshot each (the same one for a
        store table)."""
        with source_errors(self.spec, action), snapshot(self._source) as src:
            if not self.spec.external:
                yield src, src
                return
            with snapshot(self.store.engine) as st:
                yield src, st

    def _checkpoint(self) -> Checkpoint | None:
        with source_errors(self.spec, "read the checkpoint"), snapshot(self.store.engine) as st:
            return load_checkpoint(st, self.spec.name)

    def _prepare(self) -> Checkpoint | None:
        if not self._checked:
            check_source(self._source, self.spec)
            if self.spec.external and self.spec.open_by_state:
                versions = has_row_versions(self._source, self.spec)
                self.sql = replace(self.sql, versions=versions)
            self._checked = True
        cp = self._checkpoint()
        if cp is not None and json.loads(cp.spec).get("fingerprint") != self.spec.fingerprint():
            log.warning("aggregate %s: its definition changed; rebuilding", self.spec.name)
            self.reset()
            return None
        if cp is not None and not self.spec.external and not self._upgraded:
            self._upgrade_installed()
            self._upgraded = True
        return cp

    def _upgrade_installed(self) -> None:
        """Triggers and an index an earlier version installed give way to this
        version's (:mod:`~collectbus.aggregate.install`)."""
        with source_errors(self.spec, "upgrade the triggers"):
            with snapshot(self.store.engine) as st:
                triggers, index = install.outdated(st, self.sql)
            if not (triggers or index):
                return
            log.info("aggregate %s: replacing what an earlier version installed", self.spec.name)
            with write_transaction(self.store.engine) as w:
                install.upgrade(w, self.sql, triggers=triggers, index=index)

    def _save(self, before: Checkpoint | None, after: Checkpoint, changes: Changes) -> Checkpoint:
        """Write in one transaction on the held connection (whose session has
        the write settings): in PostgreSQL, the writes and the COMMIT in one
        round trip (see :func:`~collectbus.aggregate.checkpoint.save`)."""
        tuned = self.store.dialect == "postgresql"
        with source_errors(self.spec, "write the totals"), concurrent_update(self.spec.name):
            return self._held.run(
                lambda w: save(
                    w,
                    self.store.dialect,
                    self.spec.measures,
                    before,
                    after,
                    changes,
                    tuned=tuned,
                    commit=tuned,
                )
            )

    def _delta(
        self,
        src: Connection,
        st: Connection | None,
        cp: Checkpoint,
        *,
        cap: bool = True,
        probed: Sequence[object] = (),
        verify: bool = True,
        at_once: bool = False,
    ) -> Delta:
        now = self.clock.time_ns()
        if self.spec.external:
            return read_tailed(
                src,
                st,
                self.sql,
                cp,
                self._tail,
                now_ns=now,
                cap=cap,
                verify=verify,
                at_once=at_once,
            )
        assert st is src
        return read_triggered(src, self.sql, cp, now_ns=now, cap=cap, probed=probed)

    # ------------------------------------------------------------ public

    def update(self) -> UpdateResult:
        """Bring the totals up to date with the source; build them the first time."""
        if not self._verified:
            # Once per object: the source's columns, and the definition the
            # stored totals were built with.
            if self._prepare() is None:
                return self._build()
            self._verified = True
        caught_up = self._catch_up()
        if caught_up is None:  # reset meanwhile
            return self._build()
        cp, result = caught_up
        if self._stale_terms:
            log.info(
                "aggregate %s: block digests of an earlier check term; recomputing them"
                " with a full refresh",
                self.spec.name,
            )
            return self.refresh()
        if self._mismatched:
            log.warning(
                "aggregate %s: %d block(s) of closed rows differ from what was counted"
                " (first: ids from %d): a delete, a re-used id or an edit; repairing",
                self.spec.name,
                len(self._mismatched),
                self._mismatched[0] << CHECK_BLOCK_BITS,
            )
            return self.refresh()
        if self._refresh_due(cp):
            return self.refresh()
        return result

    def _catch_up(self, *, verify: bool = True) -> tuple[Checkpoint, UpdateResult] | None:
        rows = groups_written = 0
        self._mismatched = []
        self._stale_terms = False
        while True:
            if self.spec.external:
                step = self._step_external(verify=verify and not self._mismatched)
                if step is None:
                    return None
                cp, delta, groups = step
            else:
                step = self._step_store()
                if step is None:
                    return None
                cp, delta, groups = step
            self._remember(groups, cp)
            rows += delta.rows_read
            groups_written += len(groups)
            if not delta.more:
                break
        return cp, UpdateResult(self.spec.name, "update", rows, groups_written, cp.last_id)

    def _step_external(
        self, *, verify: bool
    ) -> tuple[Checkpoint, Delta, dict[str, GroupState]] | None:
        """One batch of a read-only source: read from its snapshot, then written.

        The checkpoint this object wrote last, with the ledger and digests it
        holds for it, is taken as read: the update then reads nothing from
        the store (rows open by state; groups it does not hold aside). The
        write moves the checkpoint only from that version: if another process
        moved it meanwhile, nothing is written, and the batch is read again
        from the store's checkpoint."""
        guess = self._saved
        if guess is not None and (
            self._tail.version != guess.version
            or guess.term != TERM_VERSION
            or not self.spec.open_by_state
        ):
            guess = None
        if guess is not None:
            try:
                return self._step_external_from(guess, verify=verify)
            except CheckpointConflict:
                log.info("aggregate %s: checkpoint moved by another process", self.spec.name)
                self._saved = None
                self._tail.invalidate()
                self._cache_version = None
        return self._step_external_from(None, verify=verify)

    def _step_external_from(
        self, guess: Checkpoint | None, *, verify: bool
    ) -> tuple[Checkpoint, Delta, dict[str, GroupState]] | None:
        """:meth:`_step_external` from the checkpoint ``guess``, else from the store's.

        From ``guess``, a PostgreSQL source is read in ONE statement, outside
        any transaction (:func:`~collectbus.aggregate.tail.at_once`): one
        round trip, no BEGIN or COMMIT. When that read needs another in its
        snapshot (:class:`~collectbus.aggregate.tail.SnapshotNeeded`), the
        update reads again in a transaction, as from the store's checkpoint."""
        if guess is not None and at_once(self.sql):
            try:
                return self._step_external_read(guess, verify=verify, fast=True)
            except SnapshotNeeded:
                pass
        return self._step_external_read(guess, verify=verify, fast=False)

    def _step_external_read(
        self, guess: Checkpoint | None, *, verify: bool, fast: bool
    ) -> tuple[Checkpoint, Delta, dict[str, GroupState]] | None:
        # Before the snapshot: a change made before this time is in it.
        started = self.clock.time_ns()

        def read(src: Connection) -> tuple[Checkpoint, TailDelta, dict[str, GroupState]] | None:
            if guess is not None:
                delta = self._delta(src, None, guess, verify=verify, at_once=fast)
                assert isinstance(delta, TailDelta)
                return guess, delta, self._groups_after(src, None, delta, snapshot=not fast)
            with snapshot(self.store.engine) as st:
                found = load_checkpoint(st, self.spec.name)
                if found is None:
                    return None
                if found.term != TERM_VERSION:
                    self._stale_terms = True
                delta = self._delta(src, st, found, verify=verify and not self._stale_terms)
                assert isinstance(delta, TailDelta)
                return found, delta, self._groups_after(src, st, delta)

        assert self._source_held is not None
        with source_errors(self.spec, "read new rows"):
            read_back = self._source_held.run(read, autocommit=fast)
        if read_back is None:
            return None
        found, delta, groups = read_back
        now = self.clock.time_ns()
        after = replace(delta.after, runs=found.runs + 1, updated_ns=now)
        after = checked(after, delta, started=started, now=now)
        delta.changes.groups = groups
        self._tail.invalidate()  # until the write commits
        cp = self._save(found, after, delta.changes)
        self._mismatched += delta.mismatched
        self._remember_tail(cp, delta)
        return cp, delta, groups

    def _remember_tail(self, saved: Checkpoint, delta: TailDelta) -> None:
        """The ledger and digests as just written, for the next update."""
        tail, changes = self._tail, delta.changes
        if changes.ledger_replace:
            tail.ledger = dict(changes.ledger_put)
            tail.seen = {}
        else:
            for rid in changes.ledger_drop:
                tail.ledger.pop(rid, None)
                tail.seen.pop(rid, None)
            tail.ledger.update(changes.ledger_put)
        tail.seen.update(delta.seen)
        if changes.blocks_replace:
            tail.blocks = {}
        tail.blocks.update((b, d) for b, d in changes.block_puts.items() if d[0])
        for b, d in changes.block_puts.items():
            if not d[0]:
                tail.blocks.pop(b, None)
        if not self.spec.open_by_state:
            tail.ledger, tail.seen = {}, {}
        tail.remembered(self.sql, changes, delta.seen)
        tail.version = saved.version

    def _step_store(self) -> tuple[Checkpoint, Delta, dict[str, GroupState]] | None:
        """One batch of a store table, read and written in ONE short transaction:
        the new rows of one update are few, so reading them under the write
        lock costs less than a second transaction (and, in PostgreSQL, a second
        round trip and commit)."""
        with source_errors(self.spec, "update"), concurrent_update(self.spec.name):
            return self._held.run(self._step_in)

    def _step_in(self, conn: Connection) -> tuple[Checkpoint, Delta, dict[str, GroupState]] | None:
        spec = self.spec
        # The checkpoint, the highest id and (PostgreSQL) the transaction's
        # settings in one statement; with it, if this object wrote the
        # checkpoint last, the changes and new rows past it: in PostgreSQL,
        # one round trip.
        probes = triggered_probes(self.sql)
        # PostgreSQL: the held connection's session has the write settings.
        tuned = self.store.dialect == "postgresql"
        reads: list[tuple[str, dict[str, object]]] = [
            (checkpoint_query(probes), {"name": spec.name})
        ]
        guess = self._saved
        if guess is not None:
            reads += prefetch_reads(self.sql, guess.last_id)
        results = driver.rows_many(conn, reads)
        found, probed = parse_checkpoint(spec.name, results[0])
        if found is None:
            return None
        prefetch = None
        if guess is not None and found.version == guess.version:
            prefetch = Prefetch(guess.last_id, results[1], results[2])
        delta = read_triggered(
            conn, self.sql, found, now_ns=self.clock.time_ns(), probed=probed, prefetch=prefetch
        )
        groups = self._groups_after(conn, conn, delta)
        after = replace(delta.after, runs=found.runs + 1, updated_ns=self.clock.time_ns())
        delta.changes.groups = groups
        # PostgreSQL: the writes and the COMMIT in one round trip (see save).
        saved = save(
            conn,
            self.store.dialect,
            spec.measures,
            found,
            after,
            delta.changes,
            tuned=tuned,
            commit=tuned,
        )
        return saved, delta, groups

    def _groups_after(
        self, src: Connection, st: Connection | None, delta: Delta, *, snapshot: bool = True
    ) -> dict[str, GroupState]:
        """The touched groups, deltas applied, extremes recomputed where one
        left; and, in ``delta.changes``, their sketch deltas and folds.
        ``st``: None to read the groups not held from a snapshot of the store
        of their own. ``snapshot``: False when ``src`` is no longer in the
        delta's snapshot: an extreme to recompute then raises
        :class:`~collectbus.aggregate.tail.SnapshotNeeded`."""
        n_measures = len(self.spec.measures)
        touched = {key_json(c.key) for c, _ in delta.deltas} | set(delta.partial)
        groups = self._load_groups(st, touched, delta.after.version)
        changes = delta.changes
        changed: dict[str, list[LogSketch]] = {}
        stale = apply_deltas(groups, delta.deltas, n_measures, changed)
        merge_partial(groups, delta.partial.items(), n_measures)
        if stale and not snapshot:
            raise SnapshotNeeded("an extreme value left")
        recompute_extremes(src, self.sql, delta.after.last_id, groups, stale)
        if n_measures:
            changes.sketch_deltas = sketch_deltas(changed, delta.partial)
        # Every touched group gets a row (save): a base row if folded.
        changes.folded = choose_folds(groups, groups.keys(), delta.after.version)
        for key, group in groups.items():
            group.parts = 0 if key in changes.folded else group.parts + 1
        return groups

    def _load_groups(
        self, st: Connection | None, touched: set[str], version: int
    ) -> dict[str, GroupState]:
        """The touched groups: those this object wrote last, if the checkpoint
        has not moved since, and the others from the store. The cached ones
        are changed in place: the cache stays invalid until the write commits
        (:meth:`_remember`), so a failed update leaves nothing behind."""
        if self._cache_version != version:
            self._cache = {}
        # Invalid until this update's write commits.
        self._cache_version = None
        groups = {k: self._cache[k] for k in touched if k in self._cache}
        missing = touched - set(groups)
        if missing and st is None:
            with snapshot(self.store.engine) as own:
                groups.update(load_groups(own, self.spec.name, self.spec.measures, missing))
        elif missing:
            assert st is not None
            groups.update(load_groups(st, self.spec.name, self.spec.measures, missing))
        return groups

    def _remember(self, groups: dict[str, GroupState], saved: Checkpoint) -> None:
        for key, group in groups.items():
            if group.count > 0:
                self._cache[key] = group
            else:
                self._cache.pop(key, None)
        if len(self._cache) > CACHE_GROUPS:
            self._cache = {}
        self._cache_version = saved.version
        self._saved = saved

    def _refresh_due(self, cp: Checkpoint) -> bool:
        every = self.spec.refresh_interval_s
        if every is None:
            return False
        last = cp.refreshed_ns or 0
        return self.clock.time_ns() - last >= every * 1e9

    def refresh(self) -> UpdateResult:
        """Recompute everything from one snapshot, compare, and swap it in."""
        if self._prepare() is None or self._catch_up(verify=False) is None:
            return self._build()
        now = self.clock.time_ns()
        with self._read("full refresh") as (src, st):
            found = load_checkpoint(st, self.spec.name)
            if found is None:
                return self._build()
            cp = found
            # Uncapped: whatever arrived since the catch-up, in this snapshot.
            delta = self._delta(src, st, cp, cap=False, verify=False)
            incremental = load_groups(st, self.spec.name, self.spec.measures)
            stale = apply_deltas(incremental, delta.deltas, len(self.spec.measures))
            merge_partial(incremental, delta.partial.items(), len(self.spec.measures))
            recompute_extremes(src, self.sql, delta.after.last_id, incremental, stale)
            full = full_groups(src, self.sql, delta.after.last_id)
            if self.spec.external:
                self._rebuilt(delta, src, now)
        differing = sorted(
            k
            for k in set(incremental) | set(full)
            if not same_group(incremental.get(k), full.get(k))
        )
        if differing:
            log.warning(
                "aggregate %s: full refresh found %d group(s) differing from the incremental"
                " state (first: %s); repaired",
                self.spec.name,
                len(differing),
                differing[0],
            )
        after = replace(
            delta.after,
            runs=cp.runs + 1,
            mismatches=cp.mismatches + len(differing),
            updated_ns=now,
            refreshed_ns=now,
        )
        if self.spec.external:
            after = replace(after, verified_ns=now)
            if differing:
                after = replace(after, repaired_ns=now)
        delta.changes.groups = full
        delta.changes.replace_all = True
        self._cache, self._cache_version = {}, None
        self._tail.invalidate()
        cp = self._save(cp, after, delta.changes)
        return UpdateResult(
            self.spec.name, "refresh", delta.rows_read, len(full), cp.last_id, len(differing)
        )

    def _rebuilt(self, delta: Delta, src: Connection, now: int) -> None:
        """A read-only source's ledger and digests from scratch, in ``delta``:
        what a refresh writes with the full totals."""
        found = rebuild(src, self.sql, delta.after.last_id, now)
        changes = delta.changes
        changes.ledger_put, changes.ledger_drop = found.ledger, []
        changes.ledger_prune_below, changes.ledger_replace = None, True
        changes.block_puts, changes.blocks_replace = found.blocks, True
        delta.after = replace(
            delta.after,
            floor=found.floor,
            sweep=0,
            mark=found.mark,
            pending=found.pending,
            term=TERM_VERSION,
            pass_ns=None,
            checked_ns=now,
        )

    def _build(self) -> UpdateResult:
        """Compute the totals from scratch and start the checkpoint."""
        spec = self.spec
        if not spec.external:
            self._install_triggers()
        now = self.clock.time_ns()
        changes = Changes(replace_all=True)
        with self._read("backfill") as (src, _st):
            top = max_id(src, self.sql)
            changes.groups = full_groups(src, self.sql, top)
            cp = Checkpoint(name=spec.name, spec=self._spec_json(), last_id=top)
            if spec.external:
                delta = Delta(after=cp, changes=changes)
                self._rebuilt(delta, src, now)
                cp = replace(delta.after, verified_ns=now)
            else:
                changes.consumed = [seq for seq, _, _ in load_changes(src, spec.name)]
                cp = replace(cp, pending=initial_pending(src, self.sql, top, now))
        cp = replace(cp, runs=1, updated_ns=now, refreshed_ns=now)
        self._cache, self._cache_version = {}, None
        self._tail.invalidate()
        saved = self._save(None, cp, changes)
        counted = sum(g.count for g in changes.groups.values())
        return UpdateResult(spec.name, "build", counted, len(changes.groups), saved.last_id)

    def _install_triggers(self) -> None:
        with (
            source_errors(self.spec, "install triggers"),
            write_transaction(self.store.engine) as w,
        ):
            install.install(w, self.sql)
            # Changes logged before this build are part of its snapshot.

    def reset(self, *, backfill: bool = False) -> UpdateResult | None:
        """Forget the totals and the checkpoint; rebuild them if ``backfill``."""
        with source_errors(self.spec, "reset"), write_transaction(self.store.engine) as w:
            forget(w, self.spec.name)
            if not self.spec.external:
                install.uninstall(w, self.sql)
        if backfill:
            return self._build()
        return None


def checked(after: Checkpoint, delta: TailDelta, *, started: int, now: int) -> Checkpoint:
    """The checkpoint after an update's block check (its snapshot taken
    after ``started``): verified when it compared every block; a pass of the
    sweep begun, or ended (every block compared since the pass began, none
    differing: ``checked_ns``)."""
    if delta.mismatched:
        return after  # repaired next, by a refresh that verifies it all
    if delta.verified:
        return replace(after, verified_ns=now, checked_ns=started, pass_ns=None)
    if delta.pass_began:
        after = replace(after, pass_ns=started)
    if delta.pass_ended and after.pass_ns is not None:
        after = replace(after, checked_ns=after.pass_ns, pass_ns=None)
    return after
