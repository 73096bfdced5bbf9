"""PBS reservations: ``pbs_rstat -f`` read into :class:`~collectbus.records.ReservationRecord`.

``pbs_rstat`` has no JSON output. With ``-f`` it prints, per reservation, a
line ``Resv ID: R123.server`` then one ``name = value`` line per attribute
(``Resource_List.ncpus = 4`` for a resource), then a blank line
(``pbs_resv_attributes(7B)``). It writes ``reserve_state`` as its long name
(``RESV_CONFIRMED``), or as the bare number when it has no name for it;
``reserve_start``, ``reserve_end``, ``ctime``, ``mtime`` and
``reserve_retry`` as local times of the server (``Fri Nov 27 09:00:00
2026``); ``reserve_duration`` in seconds. With no reservation it prints
nothing and exits 0; when it cannot reach the server it exits non-zero
with ``pbs_rstat: cannot connect to server`` on stderr.

What is read:

==================  ==============================================
``Resv ID``         ``resv_id``
``Reserve_Name``    ``name``
``Reserve_Owner``   ``owner`` (the user, without ``@host``)
``reserve_state``   ``native_state`` (its long name), ``state``
``reserve_substate`` ``substate``
``reserve_start``   ``start_ns``; ``reserve_end`` ``end_ns``
``reserve_duration`` ``duration_seconds``
``queue``           ``queue``
``resv_nodes``      ``nodes`` (the vnode names)
``Authorized_Users`` ``users`` (the entries, as written)
``Resource_List.nodect`` / ``.ncpus``  ``nodes_requested`` / ``cpus_requested``
``ctime`` / ``mtime`` ``created_ns`` / ``modified_ns``
==================  ==============================================

Every attribute is kept in ``raw_json``. A reservation whose lines cannot be
read (a line that is not ``name = value``, no ``reserve_state``, a time or
number that does not parse) is refused: named in ``refused`` and left out,
and the listing is then partial. Output that does not begin with a
reservation (an error page, a crash message) is not a listing at all: a
:class:`~collectbus.errors.ParseError` naming the command and the line.
"""

from __future__ import annotations

import json
from datetime import tzinfo

from collectbus.collectors.base import CollectContext
from collectbus.collectors.pbs.collector import _PbsCollector
from collectbus.collectors.pbs.fields import parse_exec_vnode, parse_time
from collectbus.errors import CommandFailed, ParseError
from collectbus.records import ReservationRecord
from collectbus.values import fit_int64

__all__ = ["PbsReservationsCollector", "parse_pbs_rstat", "reservation_state"]

SCHEDULER = "pbs"
_HEADER = "Resv ID:"

#: ``enum resv_states`` of PBS (``pbs_ifl.h``), by number: the long names
#: ``pbs_rstat -f`` prints, and the neutral state of each.
RESV_STATES: tuple[tuple[str, str], ...] = (
    ("RESV_NONE", "unconfirmed"),
    ("RESV_UNCONFIRMED", "unconfirmed"),
    ("RESV_CONFIRMED", "confirmed"),
    ("RESV_WAIT", "confirmed"),
    ("RESV_TIME_TO_RUN", "running"),
    ("RESV_RUNNING", "running"),
    ("RESV_FINISHED", "ended"),
    ("RESV_BEING_DELETED", "deleted"),
    ("RESV_DELETED", "deleted"),
    ("RESV_DELETING_JOBS", "deleted"),
    ("RESV_DEGRADED", "degraded"),
    ("RESV_BEING_ALTERED", "confirmed"),
    ("RESV_IN_CONFLICT", "degraded"),
)
_NEUTRAL = dict(RESV_STATES)


def reservation_state(value: str) -> tuple[str, str]:
    """``(native_state, state)`` of a ``reserve_state``: its long name or its number."""
    text = value.strip()
    if text.isdigit() and int(text) < len(RESV_STATES):
        return RESV_STATES[int(text)]
    return text, _NEUTRAL.get(text, "unknown")


def _blocks(text: str, source: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """``(line number, id, lines)`` per reservation; ParseError before the first."""
    blocks: list[tuple[int, str, list[tuple[int, str]]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith(_HEADER):
            blocks.append((lineno, line[len(_HEADER) :].strip(), []))
        elif not line.strip():
            continue
        elif not blocks:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise ParseError(source, lineno, f"not pbs_rstat -f output: {shown!r}")
        else:
            blocks[-1][2].append((lineno, line))
    return blocks


def _attributes(lines: list[tuple[int, str]]) -> dict[str, str]:
    """The ``name = value`` lines of one reservation; a line starting with
    white space continues the value before it (as ``qstat -f`` wraps)."""
    attrs: dict[str, str] = {}
    last: str | None = None
    for lineno, line in lines:
        if line[:1] in (" ", "\t") and last is not None and " = " not in line:
            attrs[last] += line.strip()
            continue
        name, sep, value = line.partition(" = ")
        name = name.strip()
        if not sep or not name or " " in name:
            shown = line if len(line) <= 40 else line[:37] + "..."
            raise ValueError(f"line {lineno} is not 'name = value': {shown!r}")
        if name in attrs:
            raise ValueError(f"line {lineno}: {name} given twice")
        attrs[name] = value.strip()
        last = name
    return attrs


def _number(attrs: dict[str, str], name: str) -> int | None:
    text = attrs.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} = {text[:30]!r} is not a whole number")
    return fit_int64(int(text))


def _time(attrs: dict[str, str], name: str, zone: tzinfo | None) -> int | None:
    text = attrs.get(name)
    if text is None:
        return None
    if text.isascii() and text.isdigit():  # seconds since the epoch, as hooks give it
        return fit_int64(int(text) * 1_000_000_000)
    try:
        return parse_time(text, zone)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _nodes(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    try:
        chunks = parse_exec_vnode(value)
    except ValueError as err:
        raise ValueError(f"resv_nodes: {err}") from err
    return tuple(dict.fromkeys(name for name, _ in chunks))


def _record(
    resv_id: str, attrs: dict[str, str], *, cluster: str, observed_ns: int, zone: tzinfo | None
) -> ReservationRecord:
    if not resv_id:
        raise ValueError("empty Resv ID")
    if "reserve_state" not in attrs:
        raise ValueError("no reserve_state")
    native, state = reservation_state(attrs["reserve_state"])
    owner = attrs.get("Reserve_Owner")
    users = attrs.get("Authorized_Users")
    raw = {"Resv ID": resv_id, **attrs}
    return ReservationRecord(
        cluster=cluster,
        scheduler=SCHEDULER,
        resv_id=resv_id,
        observed_ns=observed_ns,
        state=state,
        native_state=native,
        substate=attrs.get("reserve_substate"),
        name=attrs.get("Reserve_Name") or None,
        owner=(owner.partition("@")[0] or None) if owner else None,
        queue=attrs.get("queue") or None,
        users=tuple(u.strip() for u in users.split(",") if u.strip()) if users else (),
        nodes=_nodes(attrs.get("resv_nodes")),
        nodes_requested=_number(attrs, "Resource_List.nodect"),
        cpus_requested=_number(attrs, "Resource_List.ncpus"),
        start_ns=_time(attrs, "reserve_start", zone),
        end_ns=_time(attrs, "reserve_end", zone),
        duration_seconds=_number(attrs, "reserve_duration"),
        created_ns=_time(attrs, "ctime", zone),
        modified_ns=_time(attrs, "mtime", zone),
        raw_json=json.dumps(raw, separators=(",", ":")),
    )


def parse_pbs_rstat(
    data: bytes,
    *,
    source: str = "pbs_rstat -f",
    cluster: str,
    observed_ns: int,
    zone: tzinfo | None = None,
    refused: list[str] | None = None,
) -> list[ReservationRecord]:
    """One record per reservation of ``pbs_rstat -f`` output (nothing: no reservation).

    A reservation that cannot be read is named in ``refused`` (``R12.s1:
    no reserve_state``) and left out; without ``refused`` it is a ParseError.
    Times are read in ``zone`` (None: this machine's zone).
    """
    text = data.decode("utf-8", errors="surrogateescape")
    records: list[ReservationRecord] = []
    for lineno, resv_id, lines in _blocks(text, source):
        try:
            attrs = _attributes(lines)
            records.append(
                _record(resv_id, attrs, cluster=cluster, observed_ns=observed_ns, zone=zone)
            )
        except ValueError as err:
            if refused is None:
                raise ParseError(source, lineno, f"reservation {resv_id!r}: {err}") from err
            refused.append(f"{resv_id or '(no id)'}: {err}")
    return records


class PbsReservationsCollector(_PbsCollector):
    """Every reservation ``pbs_rstat -f`` lists, with a complete-listing detail.

    ``pbs_rstat`` has no ``@server`` operand: with ``server`` set it runs
    under ``env PBS_SERVER=<server>``, which PBS's clients read before
    ``/etc/pbs.conf``.
    """

    name = "pbs-reservations"

    def argv(self) -> list[str]:
        command = [self.program("pbs_rstat"), "-f"]
        return ["env", f"PBS_SERVER={self.server}", *command] if self.server else command

    def collect(self, ctx: CollectContext) -> list[ReservationRecord]:
        argv = self.argv()
        label = self.label(argv)
        result = self.run(argv)
        if not result.stdout.strip() and result.stderr_tail.strip():
            # Nothing listed, yet something said: not "no reservations".
            last = result.stderr_tail.strip().splitlines()[-1]
            raise CommandFailed(label, result.returncode, f"no reservations in the output: {last}")
        refused: list[str] = []
        records = parse_pbs_rstat(
            result.stdout,
            source=label,
            cluster=self.cluster,
            observed_ns=ctx.clock.time_ns(),
            zone=self.zone,
            refused=refused,
        )
        ctx.detail("server", self.server or "default")
        ctx.detail("reservations", str(len(records)))
        if refused:
            shown = "; ".join(refused[:3])
            more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
            ctx.detail("refused", str(len(refused)))
            ctx.report(
                ParseError(
                    label,
                    None,
                    f"cluster {self.cluster}: {len(refused)} reservations refused: {shown}{more}",
                )
            )
        ctx.reservation_listing(self.cluster, complete=not refused)
        return records
