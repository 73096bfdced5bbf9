"""One collection as one message, and every way a message can be refused."""

from __future__ import annotations

import msgpack
import pytest

from collectbus.errors import ParseError
from collectbus.fleet.envelope import decode, encode, publishable, subject, token
from collectbus.records import CollectionEvent, Record
from collectbus.testing.hosts import make_host_sample
from collectbus.testing.schedulers import make_pbs_job

S = 10**9


def _event(host: str = "node1.example.org", source: str = "host") -> CollectionEvent:
    return CollectionEvent(
        source=source, host=host, started_ns=5 * S, duration_ns=100, status="ok", records=1
    )


def test_a_collection_comes_back_as_it_went() -> None:
    sample = make_host_sample("node1.example.org", 5 * S, psi=True, cgroup=True)
    message = encode([sample], _event(), prefix="cb.site", cluster="lab")
    # The host's dots are not subject separators.
    assert message.subject == "cb.site.lab.host.node1_example_org"
    assert message.msg_id == f"lab/node1.example.org/host/{5 * S}"
    back = decode(message.subject, message.payload, prefix="cb.site")
    assert back.records == (sample, _event())
    assert (back.cluster, back.host, back.source) == ("lab", "node1.example.org", "host")


def test_tokens_hold_no_separator_or_wildcard() -> None:
    assert token("a.b c*d>e") == "a_b_c_d_e"
    assert token("") == "_"
    assert subject("p", "c", "host", "x.y") == "p.c.host.x_y"


def test_scheduler_records_are_left_to_the_local_store() -> None:
    job = make_pbs_job(1, submit_ns=S, observed_ns=2 * S)
    sample = make_host_sample("h", S)
    assert publishable([job, sample]) == (sample,)


def _payload(**changes: object) -> bytes:
    event = _event("h")
    body: dict[str, object] = {
        "v": 1,
        "cluster": "lab",
        "host": "h",
        "source": "host",
        "records": [{"type": "CollectionEvent", **_plain(event)}],
    }
    body.update(changes)
    return bytes(msgpack.packb(body))


def _plain(record: Record) -> dict[str, object]:
    from collectbus.codec import to_plain

    out = to_plain(record)
    out.pop("type")
    return dict(out)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "invalid MessagePack"),
        (bytes(msgpack.packb([1, 2])), "not a map"),
        (_payload(v=2), "payload version 2; this collectbus reads version 1"),
        (_payload(host=None), "'host' is missing or not text"),
        (_payload(records="x"), "'records' is missing or not a list"),
        (_payload(records=[]), "one CollectionEvent, last"),
        (_payload(records=[{"type": "Nope"}]), "unknown record type"),
        (_payload(records=[{"type": "HostSample", "host": "h"}]), "malformed HostSample"),
        (_payload(cluster="other"), "the payload names cb.other.host.h"),
    ],
)
def test_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=r"message on cb\.lab\.host\.h") as caught:
        decode("cb.lab.host.h", data, prefix="cb")
    assert reason in str(caught.value)


def test_records_of_another_host_or_type_are_refused() -> None:
    other = encode([make_host_sample("other", S)], _event("h"), prefix="cb", cluster="lab")
    with pytest.raises(ParseError, match="record 0 is of host 'other', not 'h'"):
        decode(other.subject, other.payload, prefix="cb")
    job = make_pbs_job(1, submit_ns=S, observed_ns=2 * S)
    body = msgpack.unpackb(encode([], _event("h"), prefix="cb", cluster="lab").payload, raw=False)
    from collectbus.codec import to_plain

    body["records"].insert(0, to_plain(job))
    with pytest.raises(ParseError, match="JobRecord is not ingested"):
        decode("cb.lab.host.h", bytes(msgpack.packb(body)), prefix="cb")
