"""CollectPlugin on the real smartswitch package."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time

import pytest
import smartswitch  # the optional extra; part of the dev install

from collectbus.calls import CallRecorder
from collectbus.calls.smartswitch import CollectPlugin


def test_plugged_by_name_records_each_handler_under_switcher_and_name() -> None:
    api = smartswitch.Switcher("api").plug("collect", capture="summary")

    @api
    def get_user(uid: int) -> dict[str, int]:
        return {"id": uid}

    assert api["get_user"](7) == {"id": 7}
    assert api.get("get_user")(8) == {"id": 8}
    plugin = api.collect
    assert isinstance(plugin, CollectPlugin)
    assert api.plugin("collect") is plugin
    first, _ = plugin.history()
    assert (first.handler, first.args, first.result) == ("api.get_user", "int", "dict[1]")
    assert first.qualname.endswith("get_user")
    assert plugin.stats("api.get_user").calls == 2  # type: ignore[union-attr]


def test_errors_reach_the_caller_unchanged() -> None:
    calls = CallRecorder()
    api = smartswitch.Switcher("api").plug(CollectPlugin(collector=calls))
    error = LookupError("no such user")

    @api
    def get_user(uid: int) -> None:
        raise error

    with pytest.raises(LookupError) as info:
        api["get_user"](1)
    assert info.value is error
    assert [r.error_type for r in calls.errors()] == ["LookupError"]


def test_async_handlers() -> None:
    calls = CallRecorder()
    api = smartswitch.Switcher("api").plug("collect", collector=calls)

    @api
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert asyncio.run(api["fetch"](4)) == 8
    assert [r.handler for r in calls.history()] == ["api.fetch"]


def test_switched_off_through_smartswitch_per_method() -> None:
    calls = CallRecorder()
    api = smartswitch.Switcher("api").plug(
        "collect", collector=calls, method_config={"ping": "enabled:off"}
    )

    @api
    def ping() -> str:
        return "pong"

    @api
    def work() -> str:
        return "done"

    assert (api["ping"](), api["work"]()) == ("pong", "done")
    assert [r.handler for r in calls.history()] == ["api.work"]
    api.collect.configure.enabled = False
    api["work"]()
    assert calls.recorded == 1


def test_children_share_a_given_collector() -> None:
    calls = CallRecorder()
    root = smartswitch.Switcher("root").plug(CollectPlugin(collector=calls))
    child = smartswitch.Switcher("users", parent=root)

    @child
    def find(name: str) -> str:
        return name

    assert root["users.find"]("ada") == "ada"
    assert child.collect.collector is calls
    assert [r.handler for r in calls.history()] == ["users.find"]


def test_collector_and_collector_options_are_exclusive() -> None:
    with pytest.raises(TypeError, match="not both"):
        CollectPlugin(collector=CallRecorder(), sample=0.5)


# ---------------------------------------------------------------- smartswitch's names


def _api_and_jobs(**options: object) -> tuple[smartswitch.Switcher, smartswitch.Switcher]:
    """Two switchers sharing one plugin's collector, each with a ``process``."""
    plugin = CollectPlugin(**options)  # type: ignore[arg-type]
    api = smartswitch.Switcher("api").plug(plugin)
    jobs = smartswitch.Switcher("jobs").plug(CollectPlugin(collector=plugin.collector))

    @api
    def process(data: object, *, scale: int = 1) -> object:
        if data is None:
            raise ValueError("no data")
        return data

    @api
    def save(data: object) -> str:
        return "saved"

    @jobs("process")
    def run(job: str) -> str:
        return job

    return api, jobs


def test_entries_carry_switcher_times_and_the_exception_as_a_dict() -> None:
    api, jobs = _api_and_jobs(capture="repr")
    before = time.time()
    api["process"]([1, 2], scale=3)
    with pytest.raises(ValueError, match="no data"):
        api["process"](None)
    jobs["process"]("nightly")
    after = time.time()
    ok, failed, job = api.collect.history()
    assert (ok["handler"], ok["switcher"], job["switcher"]) == ("api.process", "api", "jobs")
    assert isinstance(ok["timestamp"], float)
    assert before <= ok["timestamp"] <= after
    assert ok["timestamp"] == ok.started_ns / 10**9 == ok.timestamp
    assert ok["elapsed"] == ok["elapsed_ns"] / 10**9 == ok.elapsed
    assert (ok["args"], ok["kwargs"], ok["result"]) == ("[1, 2], scale=3", {"scale": "3"}, "[1, 2]")
    assert "exception" not in ok
    assert "result" not in failed
    exc = failed["exception"]
    assert (exc["type"], exc["message"]) == ("ValueError", "no data")
    assert exc["traceback"].endswith("in _api_and_jobs.<locals>.process")
    assert failed.exception == exc
    assert failed.error_type == "ValueError"  # the record's fields, as attributes
    assert "context" not in ok


def test_nothing_captured_gives_no_args_keys() -> None:
    api, _ = _api_and_jobs()
    api["save"]("x")
    [entry] = api.collect.history()
    assert set(entry) & {"args", "kwargs", "result"} == set()
    assert entry.kwargs is None


def test_a_short_name_finds_the_handler_of_either_switcher() -> None:
    api, jobs = _api_and_jobs()
    api["save"]("x")
    api["process"](1)
    jobs["process"]("j")
    plugin = api.collect
    assert [e["handler"] for e in plugin.history(handler="save")] == ["api.save"]
    assert [e["handler"] for e in plugin.history(handler="api.process")] == ["api.process"]
    with pytest.raises(ValueError, match=r"ambiguous: it could be api\.process, jobs\.process"):
        plugin.history(handler="process")
    with pytest.raises(ValueError, match="ambiguous"):
        plugin.stats()["process"]
    assert plugin.stats()["save"]["calls"] == 1


def test_history_takes_get_log_historys_filters() -> None:
    api, _ = _api_and_jobs()
    for i in range(6):
        with contextlib.suppress(ValueError):
            api["process"](None if i % 3 == 0 else i)
    plugin = api.collect
    everything = plugin.history()
    by_time = sorted(everything, key=lambda e: -e["elapsed_ns"])
    assert [e.started_ns for e in plugin.history(slowest=2)] == [e.started_ns for e in by_time[:2]]
    assert [e.started_ns for e in plugin.slowest(2)] == [e.started_ns for e in by_time[:2]]
    fastest = sorted(everything, key=lambda e: e["elapsed_ns"])[0]
    assert plugin.history(fastest=1)[0].started_ns == fastest.started_ns
    assert len(plugin.history(errors=True)) == 2
    assert len(plugin.errors(handler="api.process", last=1)) == 1
    limit = by_time[2]["elapsed"]
    slow = plugin.history(slower_than=limit)
    assert {e.started_ns for e in slow} == {
        e.started_ns for e in everything if e["elapsed"] >= limit
    }
    assert plugin.slower_than(threshold=limit) == slow
    assert plugin.history(last=2) == everything[-2:]


def test_stats_by_smartswitchs_names_sorted() -> None:
    api, _ = _api_and_jobs()
    for _ in range(3):
        api["save"]("x")
    api["process"](1)
    table = api.collect.stats(sort_by="calls")
    assert list(table) == ["api.save", "api.process", "jobs.process"]  # 3, 1, 0 calls
    assert table["save"]["calls"] == 3
    assert table["save"]["total_time"] == pytest.approx(table["save"].total_s)
    assert api.collect.stats("save")["calls"] == 3


def test_serialize_is_honoured_as_a_keyword_and_as_a_flag() -> None:
    for options in ({"serialize": True}, {"flags": "serialize"}):
        api = smartswitch.Switcher("api").plug("collect", **options)

        @api
        def save(user: dict[str, object], *, when: object = None) -> dict[str, bool]:
            return {"saved": True}

        api["save"]({"name": "Ada", "tags": ["x"]}, when=Unserialisable())
        [entry] = api.collect.history()
        assert api.collect.collector.capture == "json", options
        assert entry["args"] == [{"name": "Ada", "tags": ["x"]}]
        # What smartswitch users get for what JSON cannot hold: its str().
        assert entry["kwargs"] == {"when": "unserialisable thing"}
        assert entry["result"] == {"saved": True}


class Unserialisable:
    def __str__(self) -> str:
        return "unserialisable thing"


def test_serialize_needs_a_collector_that_captures_json() -> None:
    with pytest.raises(TypeError, match="captures JSON"):
        CollectPlugin(collector=CallRecorder(), serialize=True)
    shared = CallRecorder(serialize=True)
    assert CollectPlugin(collector=shared, serialize=True).collector is shared


_THIS_TEST = "test_include_context_adds_where_the_call_ran_and_can_be_switched"


def test_include_context_adds_where_the_call_ran_and_can_be_switched() -> None:
    for options in ({"include_context": True}, {"flags": "include_context"}):
        api = smartswitch.Switcher("api").plug("collect", host="node7", **options)

        @api
        def ping() -> str:
            return "pong"

        api["ping"]()
        [entry] = api.collect.history()
        assert entry["context"] == {
            "host": "node7",
            "pid": os.getpid(),
            "thread_id": threading.get_ident(),
            "qualname": f"{__name__}.{_THIS_TEST}.<locals>.ping",
        }, options
    api.collect.configure.include_context = False
    assert "context" not in api.collect.history()[0]
