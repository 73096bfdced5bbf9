"""``collectbus ingest`` against a real JetStream: messages published as an
agent publishes them (:func:`collectbus.fleet.envelope.encode`) and hostile
ones. A message it cannot read goes to the dead-letter subject with the
reason, the rest is stored; a value the store cannot hold is quarantined as
for a local collection; the machine's own NATS server works as a test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from pathlib import Path

import psycopg
import pytest

from collectbus.fleet.envelope import Message, encode
from collectbus.records import CollectionEvent, HostSample, Record
from collectbus.testing.hosts import make_host_sample
from tests.conftest import NatsServer
from tests.integration.cli_helpers import collectbus, collectbus_env

pytestmark = pytest.mark.slow

S = 10**9


def _collection(host: str, time_ns: int) -> tuple[list[Record], CollectionEvent]:
    sample = make_host_sample(host, time_ns)
    event = CollectionEvent(
        source="host", host=host, started_ns=time_ns, duration_ns=1000, status="ok", records=1
    )
    return [sample], event


async def _publish(
    url: str,
    messages: list[tuple[str, bytes, str]],
    *,
    stream: str = "FLEET",
    prefix: str = "collectbus",
) -> None:
    """Publish with JetStream acks, as an agent does, into ``stream`` (made if missing)."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
        for subject, payload, msg_id in messages:
            await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def _dead_letters(url: str, stream: str) -> list[tuple[str, bytes, dict[str, str]]]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(stream, seq)
            out.append((raw.subject, raw.data or b"", dict(raw.headers or {})))
        return out
    finally:
        await nc.close()


async def _delete_streams(url: str, *names: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in names:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


def _config(tmp_path: Path, url: str, stream: str, prefix: str) -> Path:
    path = tmp_path / "ingest.toml"
    path.write_text(
        f"""
[sink.nats]
url = "{url}"
stream = "{stream}"
subject_prefix = "{prefix}"
dead_letter_prefix = "{prefix}-dead"
cluster = "lab"
"""
    )
    return path


def _message(records: list[Record], event: CollectionEvent, prefix: str) -> Message:
    return encode(records, event, prefix=prefix, cluster="lab")


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_poison_messages_go_to_the_dead_letter_subject_and_the_rest_is_stored(
    tmp_path: Path, nats_server: NatsServer, postgres_url: str
) -> None:
    prefix = "collectbus"
    now = time.time_ns() - 60 * S
    good = [_message(*_collection("n1", now + i * S), prefix) for i in range(5)]
    # A value no column can hold (past 64 bits, as some NIC drivers print): quarantined.
    records, event = _collection("n1", now + 10 * S)
    sample = records[0]
    assert isinstance(sample, HostSample)
    wide = sample.net[0]._replace(rx_bytes=18446744073709551615)
    odd = _message([dataclasses.replace(sample, net=(wide, *sample.net[1:]))], event, prefix)
    garbage = (f"{prefix}.lab.host.n9", b"\xc1 not msgpack", "g1")
    records, event = _collection("n1", now + 20 * S)
    # Published on another host's subject than the payload names.
    liar = _message(records, event, prefix)
    wrong_subject = (f"{prefix}.lab.host.n2", liar.payload, "w1")
    published = [
        *((m.subject, m.payload, m.msg_id) for m in good[:3]),
        garbage,
        (odd.subject, odd.payload, odd.msg_id),
        wrong_subject,
        *((m.subject, m.payload, m.msg_id) for m in good[3:]),
    ]
    asyncio.run(_publish(nats_server.url, published))

    config = _config(tmp_path, nats_server.url, "FLEET", prefix)
    env = collectbus_env(tmp_path, postgres_url)
    done = collectbus(
        "--config", str(config), "ingest", "--duration", "4s", cwd=tmp_path, env=env
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 collections written, 0 already stored, 2 dead letters" in done.stderr, done.stderr
    # One line per reason, naming the subject and where the message went.
    assert "message on collectbus.lab.host.n9: invalid MessagePack" in done.stderr
    assert "sent to collectbus-dead.lab.host.n9" in done.stderr
    assert "the payload names collectbus.lab.host.n1" in done.stderr

    assert _count(postgres_url, "SELECT count(*) FROM collection_log") == 6
    assert _count(postgres_url, "SELECT count(DISTINCT time_ns) FROM host_cpu") == 6
    assert _count(postgres_url, "SELECT count(*) FROM quarantine WHERE field = 'rx_bytes'") == 1

    dead = asyncio.run(_dead_letters(nats_server.url, "FLEET_DEAD"))
    assert [(subject, data) for subject, data, _ in dead] == [
        ("collectbus-dead.lab.host.n9", garbage[1]),
        ("collectbus-dead.lab.host.n2", liar.payload),
    ]
    assert "invalid MessagePack" in dead[0][2]["Collectbus-Dead-Reason"]
    assert dead[1][2]["Collectbus-Subject"] == "collectbus.lab.host.n2"

    # Again: everything was acknowledged, nothing comes back.
    again = collectbus(
        "--config", str(config), "ingest", "--duration", "2s", cwd=tmp_path, env=env
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "0 messages received" in again.stderr
    assert _count(postgres_url, "SELECT count(*) FROM collection_log") == 6


def test_the_same_collection_published_twice_past_the_dedup_window_is_stored_once(
    tmp_path: Path, nats_server: NatsServer, postgres_url: str
) -> None:
    """Two message ids (JetStream keeps both), one collection: the store's key holds."""
    records, event = _collection("n1", time.time_ns() - 60 * S)
    message = _message(records, event, "collectbus")
    asyncio.run(
        _publish(
            nats_server.url,
            [(message.subject, message.payload, "a"), (message.subject, message.payload, "b")],
        )
    )
    config = _config(tmp_path, nats_server.url, "FLEET", "collectbus")
    env = collectbus_env(tmp_path, postgres_url)
    done = collectbus(
        "--config", str(config), "ingest", "--duration", "3s", cwd=tmp_path, env=env
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 messages received, 1 collections written, 1 already stored" in done.stderr
    assert _count(postgres_url, "SELECT count(*) FROM host_cpu") == 3


def test_ingest_from_the_machine_nats_server(
    tmp_path: Path, machine_nats_url: str, postgres_url: str
) -> None:
    tag = secrets.token_hex(4)
    stream, prefix = f"CBTEST_{tag}", f"cbtest-{tag}"
    records, event = _collection("n1", time.time_ns() - 60 * S)
    message = _message(records, event, prefix)
    config = _config(tmp_path, machine_nats_url, stream, prefix)
    env = collectbus_env(tmp_path, postgres_url)
    try:
        asyncio.run(
            _publish(
                machine_nats_url,
                [(message.subject, message.payload, "m1")],
                stream=stream,
                prefix=prefix,
            )
        )
        done = collectbus(
            "--config", str(config), "ingest", "--duration", "3s", cwd=tmp_path, env=env
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "1 messages received, 1 collections written" in done.stderr
    finally:
        asyncio.run(_delete_streams(machine_nats_url, stream, f"{stream}_DEAD"))
    assert _count(postgres_url, "SELECT count(*) FROM collection_log") == 1
