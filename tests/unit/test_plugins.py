from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from collectbus import plugins
from collectbus.collectors.host.collector import HostCollector
from collectbus.errors import ConfigError


def test_host_collector_is_registered_by_the_package() -> None:
    assert plugins.load_collector("host") is HostCollector


def test_unknown_collector_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"collectors\.nope: no such collector \(known: .*host"):
        plugins.load_collector("nope")


def test_a_name_registered_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    twice = [
        EntryPoint("host", "collectbus.collectors.host.collector:HostCollector", plugins.GROUP),
        EntryPoint("host", "othermod.collector:HostCollector", plugins.GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: twice)
    with pytest.raises(ConfigError, match="registered twice"):
        plugins.collector_factories()
