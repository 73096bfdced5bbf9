"""``collectbus ingest``: a durable pull consumer that writes into the store.

Several ingest processes may share one durable consumer (JetStream hands each
message to one of them). Each fetches a batch, decodes it
(:func:`collectbus.fleet.envelope.decode`), writes every collection of the
batch in one transaction with :meth:`collectbus.store.Store.write_new`, and
acknowledges the batch's messages only once that transaction has committed.
A process killed between the commit and the acknowledgements has its
messages delivered again, to itself or another: ``write_new`` finds their
collections stored and leaves them out, so nothing is written twice; one
killed before the commit has written nothing.

A message that cannot be decoded, or that the store refuses as a whole, goes
to the dead-letter subject ``<dead_letter_prefix>.<cluster>.<source>.<host>``
(the original subject's last three tokens, kept by the stream
``<stream>_DEAD``) with its payload as it came and the reason in the
``Collectbus-Dead-Reason`` header; it is acknowledged once the dead letter is
stored, and the rest of the batch is written as usual. A value the store
cannot hold is not a dead letter: as for a local collection, it is kept in
the quarantine table and the rest of its collection is stored.

A store that cannot be reached is an outage: the batch is kept, its messages
are told to wait (``in_progress``, so that JetStream does not hand them to
another process meanwhile), the outage is logged once, and the write is tried
again with a backoff of up to 30 s. NATS that cannot be reached is logged
once as well; the client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collectbus.config import NatsSinkConfig
from collectbus.errors import ParseError, StoreError
from collectbus.fleet.connect import (
    connect,
    ensure_dead_letter_stream,
    ensure_stream,
    mask_servers,
)
from collectbus.fleet.envelope import Collection, decode
from collectbus.store import Store
from collectbus.store.dberrors import RefusedError

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

log = logging.getLogger("collectbus.ingest")

DEFAULT_DURABLE = "collectbus-ingest"
#: How long JetStream waits for an acknowledgement before it delivers again:
#: past the store's write deadline, so that a slow commit is not delivered twice.
ACK_WAIT_S = 60.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0
#: A fetch returns after this long with what it has.
FETCH_TIMEOUT_S = 1.0
DEAD_REASON_HEADER = "Collectbus-Dead-Reason"


@dataclass(slots=True)
class IngestStats:
    """What an ingest process did."""

    #: Messages received (redeliveries included), and collections written.
    received: int = 0
    written: int = 0
    #: Collections left out because they were stored already (redelivered).
    duplicates: int = 0
    #: Messages sent to the dead-letter subject.
    dead_letters: int = 0
    batches: int = 0
    failed_writes: int = 0


def dead_letter_subject(config: NatsSinkConfig, subject: str) -> str:
    """Where a refused message of ``subject`` goes: its last three tokens
    (cluster, source, host) under ``dead_letter_prefix``."""
    tail = subject.split(".")[-3:]
    return ".".join([config.dead_letter_prefix, *tail])


class Ingest:
    """The consumer loop (module docstring); :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        config: NatsSinkConfig,
        store: Store,
        *,
        durable: str = DEFAULT_DURABLE,
        batch: int = 500,
        name: str = "collectbus ingest",
    ) -> None:
        self.config = config
        self.store = store
        self.durable = durable
        self.batch = batch
        self.name = name
        self.stats = IngestStats()
        self.servers = mask_servers(config.url)
        self._nats_down_since: float | None = None
        self._logged_reasons: set[str] = set()
        self._closing = False

    async def run(self, stop: asyncio.Event) -> IngestStats:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await connect(
            self.config,
            name=self.name,
            error_cb=self._nats_error,
            disconnected_cb=self._nats_disconnected,
            reconnected_cb=self._nats_reconnected,
        )
        try:
            js = nc.jetstream(timeout=self.config.publish_timeout)
            await ensure_stream(js, self.config)
            await ensure_dead_letter_stream(js, self.config)
            subscription = await js.pull_subscribe(
                f"{self.config.subject_prefix}.>",
                durable=self.durable,
                stream=self.config.stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=ACK_WAIT_S,
                    max_ack_pending=max(10_000, self.batch * 4),
                ),
            )
            log.info(
                "ingest: consuming %s (stream %s, durable %s) into %s",
                self.servers,
                self.config.stream,
                self.durable,
                self.store.url,
            )
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(self.batch, timeout=FETCH_TIMEOUT_S)
                except TimeoutError:
                    continue
                except Exception as err:  # noqa: BLE001 -- NATS away: the client reconnects
                    self._nats_failed(err)
                    await _wait(stop, RETRY_MIN_S)
                    continue
                if messages:
                    await self._handle(js, messages, stop)
        finally:
            self._closing = True
            await nc.drain()
        return self.stats

    async def _handle(self, js: JetStreamContext, messages: list[Msg], stop: asyncio.Event) -> None:
        self.stats.received += len(messages)
        good: list[tuple[Msg, Collection]] = []
        for msg in messages:
            try:
                good.append((msg, decode(msg.subject, msg.data, prefix=self.config.subject_prefix)))
            except ParseError as err:
                await self._dead_letter(js, msg, str(err))
        if not good:
            return
        refused = await self._write(good, stop)
        if refused is None:
            return  # stopped during an outage: not acknowledged, delivered again
        for msg, reason in refused:
            await self._dead_letter(js, msg, reason)
        done = {id(m) for m, _ in refused}
        for msg, _ in good:
            if id(msg) not in done:
                await msg.ack()
        self.stats.batches += 1

    async def _write(
        self, good: list[tuple[Msg, Collection]], stop: asyncio.Event
    ) -> list[tuple[Msg, str]] | None:
        """Write the batch, through outages; the messages refused, with why,
        or None if stopped before the store came back."""
        collections = [c.records for _, c in good]
        failures = 0
        down_since = 0.0
        while True:
            try:
                written, skipped = await asyncio.to_thread(self.store.write_new, collections)
            except RefusedError:
                return await self._write_each(good)
            except StoreError as err:
                failures += 1
                self.stats.failed_writes += 1
                if failures == 1:
                    down_since = time.monotonic()
                    log.error(
                        "ingest: %s; keeping the batch (%d messages), not acknowledged, "
                        "retrying with a backoff of up to %g s",
                        err,
                        len(good),
                        RETRY_MAX_S,
                    )
                for msg, _ in good:
                    await msg.in_progress()
                if await _wait(stop, min(RETRY_MIN_S * 2 ** (failures - 1), RETRY_MAX_S)):
                    return None
                continue
            if failures:
                log.info(
                    "ingest: %s is back after %.0f s, %d failed tries",
                    self.store.url,
                    time.monotonic() - down_since,
                    failures,
                )
            self.stats.written += written
            self.stats.duplicates += skipped
            return []

    async def _write_each(self, good: list[tuple[Msg, Collection]]) -> list[tuple[Msg, str]]:
        """The batch refused as a whole: each collection alone; the refused ones back."""
        refused: list[tuple[Msg, str]] = []
        for msg, collection in good:
            try:
                written, skipped = await asyncio.to_thread(
                    self.store.write_new, [collection.records]
                )
            except RefusedError as err:
                refused.append((msg, str(err)))
                continue
            self.stats.written += written
            self.stats.duplicates += skipped
        return refused

    async def _dead_letter(self, js: JetStreamContext, msg: Msg, reason: str) -> None:
        subject = dead_letter_subject(self.config, msg.subject)
        headers = {DEAD_REASON_HEADER: reason[:1000], "Collectbus-Subject": msg.subject}
        await js.publish(subject, msg.data, headers=headers)
        await msg.ack()
        self.stats.dead_letters += 1
        cause = reason.split(": ", 1)[-1]
        if cause not in self._logged_reasons:
            self._logged_reasons.add(cause)
            log.error(
                "ingest: %s; sent to %s (further messages refused for this reason are "
                "counted, not logged)",
                reason,
                subject,
            )

    def _nats_failed(self, err: BaseException) -> None:
        if self._nats_down_since is None:
            self._nats_down_since = time.monotonic()
            log.error("ingest: NATS %s: %s; waiting for it", self.servers, _describe(err))

    async def _nats_error(self, err: Exception) -> None:
        log.debug("ingest: NATS %s: %s", self.servers, _describe(err))

    async def _nats_disconnected(self) -> None:
        if self._nats_down_since is None and not self._closing:
            self._nats_down_since = time.monotonic()
            log.error("ingest: NATS %s: disconnected; reconnecting", self.servers)

    async def _nats_reconnected(self) -> None:
        if self._nats_down_since is not None:
            log.info(
                "ingest: NATS %s is back after %.0f s",
                self.servers,
                time.monotonic() - self._nats_down_since,
            )
            self._nats_down_since = None


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _describe(err: Any) -> str:
    text = str(err).strip() or type(err).__name__
    return mask_servers(text.splitlines()[0])
