"""The result file: MLCommons' TimeSeriesData shape, collectbus extras, bad files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.errors import RecordError
from collectbus.recording.timeseries import HostErrors, TimeSeriesData, load, write
from collectbus.records import HostSample

from .conftest import build_proc_root

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _recorded(tmp: Path, host: str, time_ns: int) -> HostSample:
    """A sample of the recorded snapshot, as this host at this time."""
    collector = HostCollector(proc_root=build_proc_root(tmp / "proc"), host=host)
    (sample,) = collector.collect(CollectContext(host="here"))
    collector.close()
    return dataclasses.replace(sample, time_ns=time_ns)


def _data(tmp: Path) -> TimeSeriesData:
    failed = HostSample(host="b", time_ns=T0 + S, errors=("b: no answer in time",))
    return TimeSeriesData(
        collection_interval_seconds=1.0,
        start_time_ns=T0,
        end_time_ns=T0 + 3 * S,
        samples_by_host={
            "a": (_recorded(tmp, "a", T0), _recorded(tmp, "a", T0 + S)),
            "b": (failed,),
        },
        collection_method="ssh",
        hosts_requested=("a", "b"),
        errors_by_host={"b": HostErrors(count=1, last="b: no answer in time")},
        dropped_by_host={"a": 4},
        command=("sh", "-c", "exit 7"),
        exit_code=7,
    )


def test_the_document_has_the_mlcommons_keys_and_counts(tmp_path: Path) -> None:
    doc = _data(tmp_path).to_dict()
    assert list(doc)[:8] == [
        "collection_interval_seconds",
        "start_time",
        "end_time",
        "num_samples",
        "samples_by_host",
        "collection_method",
        "hosts_requested",
        "hosts_collected",
    ]
    assert doc["start_time"] == "2023-11-14T22:13:20Z"
    assert doc["num_samples"] == 3
    # b never answered: collected all the same (its failed round is a sample), as
    # MLCommons lists it, but not answered.
    assert doc["hosts_collected"] == ["a", "b"]
    extras = doc["collectbus"]
    assert isinstance(extras, dict)
    assert extras["hosts_answered"] == ["a"]
    assert extras["dropped_samples"] == 4
    assert extras["errors_by_host"] == {"b": {"count": 1, "last": "b: no answer in time"}}
    assert extras["exit_code"] == 7


def test_write_and_load_give_the_same_recording(tmp_path: Path) -> None:
    data = _data(tmp_path)
    path = write(data, tmp_path / "out" / "ts.json")
    loaded = load(path)
    assert loaded.samples_by_host == data.samples_by_host
    assert loaded.to_dict() == data.to_dict()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_an_mlcommons_document_loads(tmp_path: Path) -> None:
    path = tmp_path / "mlps.json"
    path.write_text(
        json.dumps(
            {
                "collection_interval_seconds": 10.0,
                "start_time": "2026-01-24T12:00:00Z",
                "end_time": "2026-01-24T12:01:00Z",
                "num_samples": 1,
                "samples_by_host": {
                    "testhost": [{"timestamp": "2026-01-24T12:00:00Z", "hostname": "testhost",
                                  "vmstat": {"pgpgin": 123}}]
                },
                "collection_method": "local",
                "hosts_requested": ["testhost"],
                "hosts_collected": ["testhost"],
            }
        )
    )  # fmt: skip
    data = load(path)
    assert data.hosts_collected == ("testhost",)
    assert data.end_time_ns - data.start_time_ns == 60 * S


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r":1: not JSON: "),
        ("[1, 2]", r": not a time-series result: the document is not an object"),
        ('{"samples_by_host": {}}', r": not a time-series result: KeyError"),
        (
            '{"collection_interval_seconds": 1, "start_time": "2026-01-24T12:00:00Z",'
            ' "end_time": "2026-01-24T12:00:00Z", "samples_by_host": {"h": [{"x": 1}]}}',
            r": samples_by_host.h\[0\]: not a time-series sample",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RecordError, match=f"^{path}{message}") as err:
        load(path)
    assert "\n" not in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=f"^{tmp_path}/nope.json: cannot read: No such file"):
        load(tmp_path / "nope.json")


def test_an_unwritable_place_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RecordError, match="cannot write the result"):
        write(_data(tmp_path), tmp_path / "file" / "ts.json")
