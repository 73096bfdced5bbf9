"""``CollectPlugin``: every handler of a smartswitch ``Switcher``, recorded.

smartswitch (``pip install collectbus[smartswitch]``) builds a chain of plugin
layers around each handler it registers; a plugin's ``wrap_handler`` hook
returns the layer. This one returns a :class:`~collectbus.calls.CallRecorder`
wrapper, so the handler's calls are recorded under ``"<switcher>.<handler>"``::

    from smartswitch import Switcher
    import collectbus.calls.smartswitch  # registers the plugin as "collect"

    api = Switcher("api").plug("collect", sample=1.0)

    @api
    def get_user(uid): ...

    api["get_user"](42)
    api.collect.slowest(5)               # smartswitch 0.11 exposes plugins by name
    api.plugin("collect").stats()

Options other than smartswitch's own (``enabled``, ``flags``,
``method_config``) are :class:`~collectbus.calls.CallRecorder` options; or
pass ``collector=`` to share a collector with other code. Child switchers that
inherit the plugin share its collector when it was plugged as an instance
(``plug(CollectPlugin(...))``) or given one (``plug("collect", collector=c)``);
smartswitch rebuilds a plugin plugged by name alone from its name and options,
so each child would get a collector of its own. Turning the plugin off through
smartswitch (``api.collect.configure.enabled = False``, or
``method_config={"ping": "enabled:off"}``) skips the wrapper altogether.

Cost: smartswitch spends 0.8-0.9 µs per plugin layer on its own checks before
a plugin runs (docs/architecture.md, "Recording calls"); the recording adds
the collector's usual cost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from smartswitch import BasePlugin, Switcher

from collectbus.calls.export import ExportFormat
from collectbus.calls.recorder import CallRecorder
from collectbus.calls.stats import CallStats
from collectbus.records import CallRecord

PLUGIN_NAME = "collect"
# Keyword arguments that go to the CallRecorder a plugin makes for itself.
_COLLECTOR_OPTIONS = frozenset(
    {
        "max_history",
        "capture",
        "sample",
        "always_record_errors",
        "slow_threshold",
        "nested",
        "clock",
        "host",
        "max_text",
    }
)


class CollectPlugin(BasePlugin):  # type: ignore[misc]  # smartswitch has no type hints
    """Records every call of the handlers of the switchers it is plugged into."""

    def __init__(
        self,
        name: str | None = None,
        *,
        collector: CallRecorder | None = None,
        **config: Any,
    ) -> None:
        options = {k: config.pop(k) for k in list(config) if k in _COLLECTOR_OPTIONS}
        if collector is not None and options:
            raise TypeError(f"give collector= or collector options, not both: {sorted(options)}")
        self.collector = collector if collector is not None else CallRecorder(**options)
        # In smartswitch's config, so that the copies made for child switchers
        # (BasePlugin.to_spec) share this collector.
        super().__init__(name=name or PLUGIN_NAME, collector=self.collector, **config)

    def wrap_handler(
        self, switch: Any, entry: Any, call_next: Callable[..., Any]
    ) -> Callable[..., Any]:
        """smartswitch's hook: the recording layer around ``call_next``."""
        name = f"{switch.name}.{entry.name}" if switch.name else str(entry.name)
        func = entry.func
        qualname = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', name)}"
        return self.collector.wrap(call_next, name=name, qualname=qualname)

    # The collector's queries, so that ``switch.collect.slowest()`` works.

    def history(self, **filters: Any) -> list[CallRecord]:
        return self.collector.history(**filters)

    def errors(self, *, handler: str | None = None, last: int | None = None) -> list[CallRecord]:
        return self.collector.errors(handler=handler, last=last)

    def slowest(self, n: int = 10, *, handler: str | None = None) -> list[CallRecord]:
        return self.collector.slowest(n, handler=handler)

    def fastest(self, n: int = 10, *, handler: str | None = None) -> list[CallRecord]:
        return self.collector.fastest(n, handler=handler)

    def slower_than(self, seconds: float, *, handler: str | None = None) -> list[CallRecord]:
        return self.collector.slower_than(seconds, handler=handler)

    def stats(self, handler: str | None = None) -> CallStats | dict[str, CallStats]:
        return self.collector.stats(handler) if handler is not None else self.collector.stats()

    def to_dict(self) -> dict[str, Any]:
        return self.collector.to_dict()

    def export(self, path: str | os.PathLike[str], format: ExportFormat = "json") -> int:
        return self.collector.export(path, format=format)

    def clear(self) -> None:
        self.collector.clear()


Switcher.register_plugin(PLUGIN_NAME, CollectPlugin)
