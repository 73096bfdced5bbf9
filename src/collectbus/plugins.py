"""Collector discovery through the ``collectbus.collectors`` entry-point group.

Third-party packages add a collector by declaring, in their ``pyproject.toml``::

    [project.entry-points."collectbus.collectors"]
    mysource = "mypackage.collector:MySourceCollector"

Two entry points with the same name are refused rather than one silently
shadowing the other (the rule of prometheus_client's registry).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from collectbus.collectors.base import Collector
from collectbus.errors import ConfigError

GROUP = "collectbus.collectors"

CollectorFactory = Callable[..., Collector]


def collector_factories() -> dict[str, CollectorFactory]:
    """Every registered collector factory by name; duplicates are an error."""
    found: dict[str, CollectorFactory] = {}
    origins: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            raise ConfigError(
                f"collector {ep.name!r} is registered twice: {origins[ep.name]} and {ep.value}",
                hint="uninstall one of the two packages",
            )
        found[ep.name] = ep.load()
        origins[ep.name] = ep.value
    return found


def load_collector(name: str) -> CollectorFactory:
    """The factory registered under ``name``."""
    factories = collector_factories()
    try:
        return factories[name]
    except KeyError:
        known = ", ".join(sorted(factories)) or "none"
        raise ConfigError(
            f"collectors.{name}: no such collector (known: {known})",
            hint="check the name, or install the package that provides it",
        ) from None
