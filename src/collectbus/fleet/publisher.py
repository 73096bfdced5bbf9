"""The agent's side: every collection published to JetStream.

:class:`NatsPublisher` is a bus subscriber, synchronous like the others: it
turns each result into a message (:mod:`collectbus.fleet.envelope`) and puts
it in a bounded buffer. One background thread runs nats-py's event loop: it
connects, makes the stream if it is missing, and publishes the buffer oldest
first, each message with its ``Nats-Msg-Id`` and waiting for JetStream's
acknowledgement, so that what counts as published is stored by the server.

NATS that cannot be reached (at start or later, a publish without an
acknowledgement in ``publish_timeout``) is one outage, handled as the store
writer handles a database outage (:mod:`collectbus.pipeline.sink`): the bus
goes on collecting into the buffer, the outage is logged in one line when it
begins and one when it ends, the publish is tried again with a backoff of up
to 30 s, and when the buffer is full its oldest message is dropped and
counted in ``dropped``. A message published again after a lost
acknowledgement is the same message: JetStream's de-duplication window, and
the store's own key (:mod:`collectbus.store.replays`), keep it once.

A message the server refuses as such (larger than its ``max_payload``) can
never be published: it is counted in ``refused``, logged once, and the
buffer goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from collectbus.bus import Result
from collectbus.config import NatsSinkConfig
from collectbus.fleet.connect import connect, ensure_stream, mask_servers
from collectbus.fleet.envelope import Message, encode, publishable

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("collectbus.daemon")

RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0


class NatsPublisher:
    """A bus subscriber that publishes each collection to JetStream (module docstring)."""

    def __init__(self, config: NatsSinkConfig, *, name: str) -> None:
        self.config = config
        self.name = name
        self.servers = mask_servers(config.url)
        self._buffer: deque[Message] = deque()
        self._lock = threading.Lock()
        #: Collections JetStream acknowledged.
        self.published = 0
        #: Collections dropped from a full buffer.
        self.dropped = 0
        #: Collections that cannot be published (too large, or not encodable).
        self.refused = 0
        #: Publish or connection attempts that failed.
        self.failed_tries = 0
        self.last_error: str | None = None
        self._refusals_logged: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._deadline = 0.0
        self._outage_at: float | None = None
        self._published_before = 0
        self._dropped_before = 0
        self._failures = 0
        self._failed_before = 0

    @property
    def pending(self) -> int:
        """Collections waiting to be published."""
        return len(self._buffer)

    # ------------------------------------------------------------ bus side

    def __call__(self, result: Result) -> None:
        # A stale result repeats data that was published already: its event only.
        records = () if result.stale else publishable(result.records)
        try:
            message = encode(
                records,
                result.event,
                prefix=self.config.subject_prefix,
                cluster=self.config.cluster,
            )
        except (ValueError, OverflowError, TypeError) as err:
            self._refuse(f"{result.event.source} collection cannot be encoded: {err}")
            return
        with self._lock:
            if len(self._buffer) >= self.config.buffer:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(message)
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    def start(self) -> None:
        """Start the publishing thread (it connects in the background)."""
        self._thread = threading.Thread(target=self._run, name="nats-publisher", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def close(self, deadline_s: float) -> None:
        """Publish what is buffered for up to ``deadline_s``, then disconnect;
        what is left is counted as dropped and logged."""
        if self._thread is None:
            return
        self._deadline = time.monotonic() + deadline_s
        self._stopping = True
        self._poke()
        self._thread.join(deadline_s + 5.0)
        left = self.pending
        if left:
            with self._lock:
                self._buffer.clear()
                self.dropped += left
            log.error(
                "nats: %d collections not published at stop (%s: %s)",
                left,
                self.servers,
                self.last_error or "stopped",
            )
        log.info(
            "nats: %d collections published, %d dropped, %d refused, %d failed tries",
            self.published,
            self.dropped,
            self.refused,
            self.failed_tries,
        )

    # ------------------------------------------------------------ event loop

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ready.set()
        nc: Client | None = None
        js: JetStreamContext | None = None
        try:
            while True:
                if self._stopping and (not self._buffer or time.monotonic() >= self._deadline):
                    return
                if not self._buffer:
                    await self._sleep(None)
                    continue
                if js is None:
                    try:
                        nc = await connect(
                            self.config,
                            name=self.name,
                            error_cb=self._nats_error,
                            disconnected_cb=self._nats_disconnected,
                        )
                        js = nc.jetstream(timeout=self.config.publish_timeout)
                        await ensure_stream(js, self.config)
                    except Exception as err:  # noqa: BLE001 -- any failure to connect is an outage
                        if nc is not None:
                            await _close(nc)
                        nc, js = None, None
                        await self._failed(err)
                        continue
                head = self._buffer[0]
                try:
                    await js.publish(
                        head.subject,
                        head.payload,
                        timeout=self.config.publish_timeout,
                        headers={"Nats-Msg-Id": head.msg_id},
                    )
                except Exception as err:  # noqa: BLE001 -- sorted below
                    if _refused(err):
                        self._drop_head(head)
                        self._refuse(f"{head.subject}: {err}")
                        continue
                    await self._failed(err)
                    continue
                self._drop_head(head, published=True)
                self._failures = 0
                if self._outage_at is not None and not self._buffer:
                    self._recovered()
        finally:
            if nc is not None:
                await _close(nc)

    def _drop_head(self, head: Message, *, published: bool = False) -> None:
        with self._lock:
            # The bus may have evicted it meanwhile (a full buffer): then it is counted there.
            if self._buffer and self._buffer[0] is head:
                self._buffer.popleft()
                if published:
                    self.published += 1

    async def _sleep(self, seconds: float | None) -> None:
        """Until poked, or ``seconds`` passed, or (when stopping) the deadline."""
        assert self._wake is not None
        self._wake.clear()
        if self._stopping:
            seconds = min(seconds or 0.0, max(0.0, self._deadline - time.monotonic()))
            if seconds <= 0:
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _failed(self, err: BaseException) -> None:
        self.failed_tries += 1
        self._failures += 1
        self.last_error = _describe(err)
        delay = min(RETRY_MIN_S * 2 ** min(self._failures - 1, 16), RETRY_MAX_S)
        if self._outage_at is None:
            self._outage_at = time.monotonic()
            self._published_before = self.published
            self._dropped_before = self.dropped
            self._failed_before = self.failed_tries - 1
            log.error(
                "nats: %s: %s; collecting goes on, keeping up to %d collections to publish "
                "once NATS is back, retrying with a backoff of up to %g s",
                self.servers,
                self.last_error,
                self.config.buffer,
                RETRY_MAX_S,
            )
        else:
            log.debug("nats: still failing, next try in %g s: %s", delay, self.last_error)
        # Only a stop cuts the wait short: new collections just join the buffer.
        end = time.monotonic() + delay
        while time.monotonic() < end and not (
            self._stopping and time.monotonic() >= self._deadline
        ):
            await self._sleep(end - time.monotonic())
            if self._stopping:
                break

    def _recovered(self) -> None:
        assert self._outage_at is not None
        log.info(
            "nats: %s is back after %.0f s: %d collections published, %d dropped, %d failed tries",
            self.servers,
            time.monotonic() - self._outage_at,
            self.published - self._published_before,
            self.dropped - self._dropped_before,
            self.failed_tries - self._failed_before,
        )
        self._outage_at = None

    def _refuse(self, reason: str) -> None:
        self.refused += 1
        self.last_error = reason
        cause = reason.split(": ", 1)[-1]
        if cause in self._refusals_logged:
            log.debug("nats: refused again: %s", reason)
            return
        self._refusals_logged.add(cause)
        log.error(
            "nats: %s; the collection was dropped, not retried (further refusals for this "
            "cause are counted, not logged)",
            reason,
        )

    async def _nats_error(self, err: Exception) -> None:
        log.debug("nats: %s: %s", self.servers, _describe(err))

    async def _nats_disconnected(self) -> None:
        log.debug("nats: %s: disconnected", self.servers)


def _refused(err: BaseException) -> bool:
    """True for an error that publishing the same message again cannot cure."""
    from nats.errors import BadSubjectError, MaxPayloadError

    return isinstance(err, MaxPayloadError | BadSubjectError)


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return mask_servers(text.splitlines()[0])


async def _close(nc: Any) -> None:
    try:
        await asyncio.wait_for(nc.close(), 5.0)
    except Exception as err:  # noqa: BLE001 -- closing is best effort
        log.debug("nats: close failed: %s", _describe(err))
