"""Reading jobs, their history and the scheduler snapshots back.

Every reader takes an open connection (a read snapshot, see
:meth:`collectbus.store.Store`) and returns plain rows as dicts, oldest
first unless said otherwise. Time windows are ``since_ns <= t < until_ns``.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from collectbus.store.schema import (
    job_history,
    jobs,
    node_snapshots,
    queue_snapshots,
    system_snapshots,
)

#: The ``jobs`` columns readers return unless asked for the raw payload too.
JOB_FIELDS = tuple(c.name for c in jobs.columns if c.name != "raw_json")


def _jobs_where(
    *,
    cluster: str | None,
    job_id: str | None,
    user: str | None,
    state: str | None,
    queue: str | None,
    account: str | None,
    since_ns: int | None,
    until_ns: int | None,
    job_prefix: str | None = None,
) -> list[ColumnElement[bool]]:
    c = jobs.c
    where: list[ColumnElement[bool]] = []
    if job_prefix is not None:
        # PBS ids carry the server name ("123.pbs01"); people type "123".
        where.append(c.job_id.startswith(job_prefix + ".", autoescape=True))
    for column, value in (
        (c.cluster, cluster),
        (c.job_id, job_id),
        (c.username, user),
        (c.state, state),
        (c.queue, queue),
        (c.account, account),
    ):
        if value is not None:
            where.append(column == value)
    # Jobs that existed in the window: submitted before its end, seen after its start.
    if since_ns is not None:
        where.append(c.last_seen_ns >= since_ns)
    if until_ns is not None:
        where.append(c.submit_ns < until_ns)
    return where


def read_jobs(
    conn: Connection,
    *,
    cluster: str | None = None,
    job_id: str | None = None,
    user: str | None = None,
    state: str | None = None,
    queue: str | None = None,
    account: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    limit: int | None = None,
    raw: bool = False,
    job_prefix: str | None = None,
) -> list[dict[str, object]]:
    """Jobs that existed in the window, by submit time; the newest ``limit`` if given.

    ``job_prefix`` matches ids that start with it and a dot (``123`` finds
    ``123.pbs01``)."""
    c = jobs.c
    columns = [c[name] for name in JOB_FIELDS] + ([c.raw_json] if raw else [])
    where = _jobs_where(
        cluster=cluster,
        job_id=job_id,
        user=user,
        state=state,
        queue=queue,
        account=account,
        since_ns=since_ns,
        until_ns=until_ns,
        job_prefix=job_prefix,
    )
    query = select(*columns).where(*where).order_by(c.submit_ns.desc(), c.job_id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r) for r in reversed(conn.execute(query).mappings().all())]


def read_history(
    conn: Connection,
    *,
    cluster: str | None = None,
    job_id: str | None = None,
    submit_ns: int | None = None,
    user: str | None = None,
    field: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    limit: int | None = None,
) -> list[dict[str, object]]:
    """History rows with their job's user and queue; the newest ``limit`` if given."""
    h, j = job_history.c, jobs.c
    query: Select[tuple[object, ...]] = select(
        *h, j.username, j.account, j.queue, j.scheduler
    ).join(
        jobs,
        and_(h.cluster == j.cluster, h.job_id == j.job_id, h.submit_ns == j.submit_ns),
    )
    if job_id is not None and "." not in job_id:
        # As ``collectbus job`` does: "123" names "123.pbs01" too.
        query = query.where(
            or_(h.job_id == job_id, h.job_id.startswith(job_id + ".", autoescape=True))
        )
        job_id = None
    for column, value in (
        (h.cluster, cluster),
        (h.job_id, job_id),
        (h.submit_ns, submit_ns),
        (j.username, user),
        (h.field, field),
    ):
        if value is not None:
            query = query.where(column == value)
    if since_ns is not None:
        query = query.where(h.observed_ns >= since_ns)
    if until_ns is not None:
        query = query.where(h.observed_ns < until_ns)
    query = query.order_by(h.observed_ns.desc(), h.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r) for r in reversed(conn.execute(query).mappings().all())]


def read_state_changes(
    conn: Connection, *, since_ns: int, until_ns: int, cluster: str | None = None
) -> list[dict[str, object]]:
    """Every ``state`` history row before ``until_ns`` of the jobs that were
    live at some time in the window, with the job's queue, user and account."""
    h, j = job_history.c, jobs.c
    query = (
        select(h.cluster, h.job_id, h.submit_ns, h.observed_ns, h.new_value, j.queue, j.username)
        .join(
            jobs,
            and_(h.cluster == j.cluster, h.job_id == j.job_id, h.submit_ns == j.submit_ns),
        )
        .where(h.field == "state", h.observed_ns < until_ns, j.last_seen_ns >= since_ns)
        .order_by(h.cluster, h.job_id, h.submit_ns, h.observed_ns, h.id)
    )
    if cluster is not None:
        query = query.where(h.cluster == cluster)
    return [dict(r) for r in conn.execute(query).mappings()]


def _latest(
    conn: Connection, table: str, key: str, *, cluster: str | None, at_ns: int | None
) -> list[dict[str, object]]:
    snapshots = {"node": node_snapshots, "queue": queue_snapshots, "server": system_snapshots}[key]
    assert snapshots.name == table
    c = snapshots.c
    newest = select(c.cluster, c[key], func.max(c.observed_ns).label("t")).group_by(
        c.cluster, c[key]
    )
    if at_ns is not None:
        newest = newest.where(c.observed_ns <= at_ns)
    if cluster is not None:
        newest = newest.where(c.cluster == cluster)
    m = newest.subquery()
    query = (
        select(snapshots)
        .join(m, and_(c.cluster == m.c.cluster, c[key] == m.c[key], c.observed_ns == m.c.t))
        .order_by(c.cluster, c[key])
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def latest_nodes(
    conn: Connection, *, cluster: str | None = None, at_ns: int | None = None
) -> list[dict[str, object]]:
    """Each node's newest snapshot (at or before ``at_ns``)."""
    return _latest(conn, "node_snapshots", "node", cluster=cluster, at_ns=at_ns)


def latest_queues(
    conn: Connection, *, cluster: str | None = None, at_ns: int | None = None
) -> list[dict[str, object]]:
    """Each queue's newest snapshot (at or before ``at_ns``)."""
    return _latest(conn, "queue_snapshots", "queue", cluster=cluster, at_ns=at_ns)


def latest_systems(
    conn: Connection, *, cluster: str | None = None, at_ns: int | None = None
) -> list[dict[str, object]]:
    """Each server's newest snapshot (at or before ``at_ns``)."""
    return _latest(conn, "system_snapshots", "server", cluster=cluster, at_ns=at_ns)


def read_node_snapshots(
    conn: Connection,
    *,
    since_ns: int,
    until_ns: int,
    cluster: str | None = None,
    lookback_ns: int = 0,
) -> list[dict[str, object]]:
    """Node rows observed in ``[since_ns - lookback_ns, until_ns)``, by node and time."""
    c = node_snapshots.c
    query = (
        select(c.cluster, c.node, c.observed_ns, c.state, c.native_state)
        .where(c.observed_ns >= since_ns - lookback_ns, c.observed_ns < until_ns)
        .order_by(c.cluster, c.node, c.observed_ns)
    )
    if cluster is not None:
        query = query.where(c.cluster == cluster)
    return [dict(r) for r in conn.execute(query).mappings()]


def read_queue_snapshots(
    conn: Connection, *, since_ns: int, until_ns: int, cluster: str | None = None
) -> list[dict[str, object]]:
    """Queue rows observed in the window, by time."""
    c = queue_snapshots.c
    query = (
        select(queue_snapshots)
        .where(c.observed_ns >= since_ns, c.observed_ns < until_ns)
        .order_by(c.observed_ns, c.cluster, c.queue)
    )
    if cluster is not None:
        query = query.where(c.cluster == cluster)
    return [dict(r) for r in conn.execute(query).mappings()]
