"""Slurm reservations: ``scontrol show reservation -o`` read into
:class:`~collectbus.records.ReservationRecord`.

Slurm 22.05 has no JSON for reservations (``scontrol --json`` does not exist
there), so the one-line text output is read: one reservation per line of
``Key=Value`` words (:func:`~collectbus.collectors.slurm.text.parse_keyvalue_lines`).
With none, ``scontrol`` prints ``No reservations in the system`` and exits 0.

==================  ==============================================
``ReservationName`` ``resv_id`` and ``name``
``State``           ``native_state``; ``ACTIVE`` is ``running``,
                    ``INACTIVE`` ``confirmed`` before its start and
                    ``ended`` after its end
``StartTime``/``EndTime`` ``start_ns``/``end_ns`` (local time, as printed)
``Duration``        ``duration_seconds``
``Nodes``           ``nodes`` (the hostlist expanded)
``NodeCnt``/``CoreCnt`` ``nodes_requested``/``cpus_requested``
``PartitionName``   ``queue``
``Users``           ``users``; ``Flags`` in ``substate``
==================  ==============================================

:class:`SlurmReservationsCollector` says in its event whether its listing is
complete (``reservation_listing``, see :mod:`collectbus.collectors.base`): it
is, unless a line was refused. ``scontrol`` failing or hanging fails the
collection, and nothing is taken for gone.

Slurm keeps no owner or creation time for a reservation: ``owner`` and
``created_ns`` are None. A line without ``ReservationName`` or with a time
that does not parse is refused, named in ``refused``; the rest are kept.
"""

from __future__ import annotations

import json
from datetime import tzinfo

from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import CommandRunner
from collectbus.collectors.slurm.collector import (
    SlurmSettings,
    _local_tz,
    _report_refused,
    _SlurmCommands,
)
from collectbus.collectors.slurm.states import duration_seconds, expand_hostlist, text_time_ns
from collectbus.collectors.slurm.text import parse_keyvalue_lines
from collectbus.errors import ParseError
from collectbus.records import ReservationRecord
from collectbus.values import fit_int64

__all__ = ["SlurmReservationsCollector", "parse_scontrol_reservations"]

SCHEDULER = "slurm"
#: What ``scontrol show reservation`` prints when there is none.
NO_RESERVATIONS = b"No reservations in the system"


def _value(text: str | None) -> str | None:
    if text is None or text in ("", "(null)", "N/A", "n/a"):
        return None
    return text


def _count(text: str | None) -> int | None:
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    return fit_int64(int(text))


def _time(row: dict[str, str], key: str, tz: tzinfo) -> int | None:
    text = row.get(key)
    if text is None:
        return None
    try:
        return text_time_ns(text, tz)
    except ValueError as err:
        raise ValueError(f"{key}={text[:30]!r} is not a time") from err


def _state(native: str, start_ns: int | None, end_ns: int | None, now_ns: int) -> str:
    if native == "ACTIVE":
        return "running"
    if native == "INACTIVE":
        if end_ns is not None and end_ns <= now_ns:
            return "ended"
        return "confirmed"
    return "unknown"


def _record(
    row: dict[str, str], *, cluster: str, observed_ns: int, tz: tzinfo
) -> ReservationRecord:
    name = _value(row.get("ReservationName"))
    if not name:
        raise ValueError("no ReservationName")
    native = row.get("State", "").strip().upper()
    start_ns, end_ns = _time(row, "StartTime", tz), _time(row, "EndTime", tz)
    users = _value(row.get("Users"))
    duration = row.get("Duration")
    return ReservationRecord(
        cluster=cluster,
        scheduler=SCHEDULER,
        resv_id=name,
        observed_ns=observed_ns,
        state=_state(native, start_ns, end_ns, observed_ns),
        native_state=native or "UNKNOWN",
        substate=_value(row.get("Flags")),
        name=name,
        queue=_value(row.get("PartitionName")),
        users=tuple(u for u in users.split(",") if u) if users else (),
        nodes=expand_hostlist(_value(row.get("Nodes")) or ""),
        nodes_requested=_count(row.get("NodeCnt")),
        cpus_requested=_count(row.get("CoreCnt")),
        start_ns=start_ns,
        end_ns=end_ns,
        duration_seconds=duration_seconds(duration) if duration else None,
        raw_json=json.dumps(row, sort_keys=True, separators=(",", ":")),
    )


def parse_scontrol_reservations(
    data: bytes,
    *,
    source: str = "scontrol show reservation -o",
    cluster: str,
    observed_ns: int,
    tz: tzinfo,
    refused: list[str] | None = None,
) -> list[ReservationRecord]:
    """One record per reservation line; none for ``No reservations in the system``.

    A line that cannot be read is named in ``refused`` (``line 2: no
    ReservationName``) and left out; without ``refused`` it is a ParseError.
    Output that is not ``Key=Value`` lines at all is a ParseError.
    """
    if data.strip() == NO_RESERVATIONS:
        return []
    records = []
    for i, row in enumerate(parse_keyvalue_lines(data, source), 1):
        try:
            records.append(_record(row, cluster=cluster, observed_ns=observed_ns, tz=tz))
        except ValueError as err:
            if refused is None:
                raise ParseError(source, i, str(err)) from err
            refused.append(f"line {i}: {err}")
    return records


class SlurmReservationsCollector:
    """Every reservation ``scontrol show reservation -o`` lists."""

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        *,
        runner: CommandRunner | None = None,
        name: str = "slurm-reservations",
    ) -> None:
        self.name = name
        self._cmd = _SlurmCommands(settings or SlurmSettings(), runner)

    def collect(self, ctx: CollectContext) -> list[ReservationRecord]:
        now = ctx.clock.time_ns()
        result = self._cmd.run(ctx, "scontrol", "show", "reservation", "-o")
        cluster = self._cmd.cluster(ctx)
        refused: list[str] = []
        records = parse_scontrol_reservations(
            result.stdout,
            source=result.command,
            cluster=cluster,
            observed_ns=now,
            tz=_local_tz(),
            refused=refused,
        )
        ctx.detail("reservations", str(len(records)))
        _report_refused(ctx, result.command, cluster, "reservations", refused)
        ctx.reservation_listing(cluster, complete=not refused)
        return records
