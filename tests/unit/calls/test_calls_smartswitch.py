"""CollectPlugin on the real smartswitch package."""

from __future__ import annotations

import asyncio

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
