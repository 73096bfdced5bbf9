"""One collection as one NATS message, and back.

The subject says what and where: ``<prefix>.<cluster>.<source>.<host>``, each
name made a valid subject token (a host name's dots become ``_``; the payload
keeps the name itself). The message id (``Nats-Msg-Id``, JetStream's own
de-duplication) is the collection's identity, so a collection published again
is the same message. The payload is MessagePack: a map with the format
version ``v``, the cluster, host and source, and the records as
:func:`collectbus.codec.to_plain` gives them, the collection's
:class:`~collectbus.records.CollectionEvent` last. That is all the store needs
to write it once (:meth:`collectbus.store.Store.write_new`).

:func:`decode` refuses, with one line naming the subject, anything it cannot
vouch for: bytes that are not MessagePack, another version, a record of an
unknown or unsupported type, no event or several, records of another host
than the message names, a subject that does not match the payload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from collectbus.codec import from_plain, to_plain
from collectbus.errors import ParseError
from collectbus.records import (
    CallRecord,
    CollectionEvent,
    HostInventory,
    HostSample,
    Record,
)

#: The payload format this collectbus writes and reads.
VERSION = 1
#: The record types a message may carry: what the store writes without the
#: job tracker (scheduler listings stay with the head node's local store).
PUBLISHED_TYPES: tuple[type, ...] = (HostSample, HostInventory, CallRecord, CollectionEvent)

_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def token(name: str) -> str:
    """``name`` as one subject token: every other character becomes ``_``."""
    return _NOT_TOKEN.sub("_", name)[:128] or "_"


def subject(prefix: str, cluster: str, source: str, host: str) -> str:
    """``<prefix>.<cluster>.<source>.<host>``, each name a valid token."""
    return f"{prefix}.{token(cluster)}.{token(source)}.{token(host)}"


@dataclass(frozen=True, slots=True)
class Message:
    """What a publisher sends for one collection."""

    subject: str
    #: ``Nats-Msg-Id``: the same for the same collection, published again or not.
    msg_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Collection:
    """A message read back: its collection's records, the event last."""

    cluster: str
    host: str
    source: str
    records: tuple[Record, ...]


def publishable(records: Sequence[Record]) -> tuple[Record, ...]:
    """The records a message carries: those of :data:`PUBLISHED_TYPES`."""
    return tuple(r for r in records if isinstance(r, PUBLISHED_TYPES))


def encode(
    records: Sequence[Record], event: CollectionEvent, *, prefix: str, cluster: str
) -> Message:
    """The message of one collection (``records`` without its ``event``).

    Raises ValueError (or OverflowError) for a value MessagePack cannot hold,
    which the parsers never let through (:mod:`collectbus.values`).
    """
    body = {
        "v": VERSION,
        "cluster": cluster,
        "host": event.host,
        "source": event.source,
        "records": [to_plain(r) for r in (*records, event)],
    }
    payload = cast(bytes, msgpack.packb(body, use_bin_type=True))
    return Message(
        subject(prefix, cluster, event.source, event.host),
        f"{cluster}/{event.host}/{event.source}/{event.started_ns}",
        payload,
    )


def _text(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ParseError(where, None, f"{key!r} is missing or not text")
    return value


def decode(subject_name: str, data: bytes, *, prefix: str) -> Collection:
    """The collection of a message received on ``subject_name``; ParseError if refused."""
    where = f"message on {subject_name}"
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise ParseError(where, None, f"invalid MessagePack: {err}") from err
    if not isinstance(body, dict):
        raise ParseError(where, None, "the payload is not a map")
    version = body.get("v")
    if version != VERSION:
        raise ParseError(
            where, None, f"payload version {version!r}; this collectbus reads version {VERSION}"
        )
    cluster, host, source = (_text(body, k, where) for k in ("cluster", "host", "source"))
    expected = subject(prefix, cluster, source, host)
    if subject_name != expected:
        raise ParseError(where, None, f"the payload names {expected}")
    plain = body.get("records")
    if not isinstance(plain, list):
        raise ParseError(where, None, "'records' is missing or not a list")
    records: list[Record] = []
    for i, item in enumerate(plain):
        if not isinstance(item, dict):
            raise ParseError(where, None, f"record {i} is not a map")
        record = from_plain(item, source=f"{where}, record {i}")
        if not isinstance(record, PUBLISHED_TYPES):
            raise ParseError(where, None, f"record {i}: {type(record).__name__} is not ingested")
        if isinstance(record, HostSample | HostInventory | CollectionEvent) and record.host != host:
            raise ParseError(where, None, f"record {i} is of host {record.host!r}, not {host!r}")
        records.append(record)
    event = records[-1] if records else None
    if not isinstance(event, CollectionEvent) or any(
        isinstance(r, CollectionEvent) for r in records[:-1]
    ):
        raise ParseError(where, None, "a message holds one CollectionEvent, last")
    if event.source != source:
        raise ParseError(where, None, f"the event is of source {event.source!r}, not {source!r}")
    if not isinstance(event.started_ns, int) or isinstance(event.started_ns, bool):
        raise ParseError(where, None, "the event's started_ns is not an integer")
    return Collection(cluster, host, source, tuple(records))
