"""CallRecords survive JSON and MessagePack, as every record does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collectbus import codec
from collectbus.records import CallRecord

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
ints = st.integers(min_value=0, max_value=2**63 - 1)
call_records = st.builds(
    CallRecord,
    handler=text,
    qualname=text,
    host=text,
    pid=st.integers(0, 2**22),
    thread_id=st.integers(0, 2**64 - 1),
    started_ns=ints,
    elapsed_ns=ints,
    error_type=st.none() | text,
    error_message=st.none() | text,
    traceback=st.none() | text,
    args=st.none() | text,
    result=st.none() | text,
)


@given(call_records)
def test_json_round_trip(record: CallRecord) -> None:
    assert codec.loads_json(codec.dumps_json(record)) == record


@given(call_records)
def test_msgpack_round_trip(record: CallRecord) -> None:
    assert codec.loads_msgpack(codec.dumps_msgpack(record)) == record


def test_ok_means_no_error_type() -> None:
    record = CallRecord(
        handler="h", qualname="m.h", host="x", pid=1, thread_id=1, started_ns=0, elapsed_ns=1
    )
    assert record.ok
    assert not CallRecord(
        handler="h", qualname="m.h", host="x", pid=1, thread_id=1, started_ns=0, elapsed_ns=1,
        error_type="KeyError",
    ).ok  # fmt: skip
