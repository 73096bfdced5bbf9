from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectbus import codec
from collectbus.errors import ParseError
from collectbus.records import (
    CgroupRow,
    CollectionEvent,
    CpuRow,
    DiskRow,
    HostInventory,
    HostSample,
    JobRecord,
    LoadRow,
    NetRow,
    NodeRecord,
    ProcessRow,
    ProcessSample,
    PsiRow,
    QueueRecord,
    Record,
    StatRow,
    SystemRecord,
    UptimeRow,
)

counters = st.integers(min_value=0, max_value=2**63 - 1)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)

cpu_rows = st.builds(CpuRow, st.integers(-1, 512), *([counters] * 10))
disk_rows = st.builds(
    DiskRow, names, counters, counters, *([counters] * 11), *([st.none() | counters] * 6)
)
net_rows = st.builds(NetRow, names, *([counters] * 16))
load_rows = st.builds(LoadRow, floats, floats, floats, counters, counters, counters)
stat_rows = st.builds(StatRow, *([counters] * 7))
optional_floats = st.none() | floats
psi_rows = st.builds(
    PsiRow, names, floats, floats, floats, counters, *([optional_floats] * 3), st.none() | counters
)
uptime_rows = st.builds(UptimeRow, floats, floats)
cgroup_rows = st.builds(CgroupRow, names, *([st.none() | counters] * 21))
samples = st.builds(
    HostSample,
    host=names,
    time_ns=counters,
    cpu=st.lists(cpu_rows, max_size=4).map(tuple),
    stat=st.none() | stat_rows,
    mem=st.none() | st.lists(st.none() | counters, max_size=8).map(tuple),
    vmstat=st.none() | st.lists(st.none() | counters, max_size=8).map(tuple),
    disk=st.lists(disk_rows, max_size=3).map(tuple),
    net=st.lists(net_rows, max_size=3).map(tuple),
    load=st.none() | load_rows,
    errors=st.lists(names, max_size=2).map(tuple),
    psi=st.lists(psi_rows, max_size=3).map(tuple),
    uptime=st.none() | uptime_rows,
    cgroup=st.none() | cgroup_rows,
)
inventories = st.builds(
    HostInventory,
    host=names,
    time_ns=counters,
    document=st.dictionaries(names, names | counters).map(json.dumps),
    errors=st.lists(names, max_size=2).map(tuple),
)
events = st.builds(
    CollectionEvent,
    source=names,
    host=names,
    started_ns=counters,
    duration_ns=counters,
    status=st.sampled_from(["ok", "partial", "error", "timeout", "skipped"]),
    records=st.integers(0, 10_000),
    error=st.none() | names,
    stale=st.booleans(),
    details=st.lists(st.tuples(names, names), max_size=3).map(tuple),
)

optional_ns = st.none() | counters
optional_count = st.none() | st.integers(-(2**31), 2**31)
state_counts = st.lists(st.tuples(names, st.integers(0, 10**6)), max_size=3).map(tuple)
jobs = st.builds(
    JobRecord,
    cluster=names,
    scheduler=st.sampled_from(["pbs", "slurm"]),
    job_id=names,
    submit_ns=optional_ns,
    observed_ns=counters,
    state=names,
    native_state=names,
    exec_hosts=st.lists(names, max_size=3).map(tuple),
    exit_status=optional_count,
    eligible_seconds=optional_count,
    raw_json=names,
)
nodes = st.builds(
    NodeRecord,
    cluster=names,
    scheduler=names,
    node=names,
    observed_ns=counters,
    state=names,
    native_state=names,
    partitions=st.lists(names, max_size=2).map(tuple),
    jobs=st.lists(names, max_size=2).map(tuple),
    mem_total_bytes=optional_ns,
)
queues = st.builds(
    QueueRecord,
    cluster=names,
    scheduler=names,
    queue=names,
    observed_ns=counters,
    enabled=st.none() | st.booleans(),
    jobs_total=optional_count,
    state_counts=state_counts,
)
systems = st.builds(
    SystemRecord,
    cluster=names,
    scheduler=names,
    server=names,
    observed_ns=counters,
    state_counts=state_counts,
)
optional_counters = st.none() | counters
process_rows = st.builds(
    ProcessRow,
    st.integers(1, 2**22),
    names,
    names,
    st.none() | names,
    optional_floats,
    counters,
    optional_counters,
    optional_counters,
    st.integers(1, 10**5),
    st.none() | st.integers(1, 100),
    st.none() | st.integers(1, 100),
)
processes = st.builds(
    ProcessSample,
    host=names,
    time_ns=counters,
    processes=st.lists(process_rows, max_size=3).map(tuple),
    seen=st.integers(0, 10**6),
    vanished=st.integers(0, 10**6),
    errors=st.lists(names, max_size=2).map(tuple),
)
records = samples | inventories | events | jobs | nodes | queues | systems | processes


@given(records)
def test_json_round_trip(record: Record) -> None:
    assert codec.loads_json(codec.dumps_json(record)) == record


@given(records)
def test_msgpack_round_trip(record: Record) -> None:
    assert codec.loads_msgpack(codec.dumps_msgpack(record)) == record


def test_json_is_readable() -> None:
    sample = HostSample(host="h", time_ns=5, load=LoadRow(1.0, 0.5, 0.25, 2, 100, 42))
    plain = codec.to_plain(sample)
    assert plain["type"] == "HostSample"
    assert plain["load"] == {
        "load1": 1.0,
        "load5": 0.5,
        "load15": 0.25,
        "procs_running": 2,
        "procs_total": 100,
        "last_pid": 42,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "must be a JSON object"),
        ('{"type": "Nope"}', "unknown record type"),
        (
            '{"type": "HostSample", "host": "h", "time_ns": 1, "load": {"load1": 1}}',
            "malformed HostSample",
        ),
    ],
)
def test_bad_input_is_a_parse_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        codec.loads_json(text, source="result.json")


def test_bad_msgpack() -> None:
    with pytest.raises(ParseError, match="invalid MessagePack"):
        codec.loads_msgpack(b"\xc1")
