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

**For users of smartswitch's call history.** The queries answer in its
names and forms: entries are :class:`~collectbus.calls.entry.CallEntry`
mappings (``entry["elapsed"]``, ``entry["exception"]["message"]``,
``entry["switcher"]``); ``history()`` takes ``slowest``, ``fastest`` and
``slower_than`` as ``get_log_history`` did; ``slower_than(threshold=0.1)``;
``stats()`` entries have ``calls``, ``errors``, ``avg_time``, ``min_time``,
``max_time``, ``total_time`` and ``last_call``, and ``stats(sort_by="avg_time")``
puts the slowest handler first. A handler is found by its own name as well as
by ``"<switcher>.<name>"`` (``history(handler="process")``); a name that two
switchers share is an error naming both. Two options, given as keywords or as
smartswitch flags (``flags="serialize,include_context"``):

- ``serialize=True`` keeps arguments, keyword arguments and results as JSON
  values, so entries hand back lists, dicts and numbers; a value JSON has no
  form for is kept as its ``str()``, or given to ``serialize=`` when that is a
  function (``json.dumps(default=...)``). Without it (and without
  ``capture=``) no argument is kept; ``capture="repr"`` keeps reprs.
- ``include_context=True`` adds ``context`` to each entry: the host, process,
  thread and ``module.qualname`` of the call. It can be changed at run time
  (``api.collect.configure.include_context = True``).

Cost: smartswitch spends 0.8-0.9 µs per plugin layer on its own checks before
a plugin runs (docs/architecture.md, "Recording calls"); the recording adds
the collector's usual cost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from smartswitch import BasePlugin, Switcher

from collectbus.calls.entry import CallEntry
from collectbus.calls.export import ExportFormat
from collectbus.calls.recorder import CallRecorder, pick_threshold
from collectbus.calls.stats import CallStats, StatsTable

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
        # Given as keywords, or as smartswitch flags ("serialize,include_context").
        flags = self._parse_flags(config["flags"]) if config.get("flags") else {}
        serialize = config.pop("serialize", flags.get("serialize"))
        include_context = bool(config.pop("include_context", flags.get("include_context")))
        options = {k: config.pop(k) for k in list(config) if k in _COLLECTOR_OPTIONS}
        if collector is not None and options:
            raise TypeError(f"give collector= or collector options, not both: {sorted(options)}")
        if collector is None:
            collector = CallRecorder(serialize=serialize, **options)
        elif serialize and collector.capture != "json":
            raise TypeError(
                "serialize= needs a collector that captures JSON: "
                "give it to the collector, CallRecorder(serialize=...)"
            )
        self.collector = collector
        # In smartswitch's config, so that the copies made for child switchers
        # (BasePlugin.to_spec) share this collector and these options.
        super().__init__(
            name=name or PLUGIN_NAME,
            collector=self.collector,
            serialize=serialize,
            include_context=include_context,
            **config,
        )

    @property
    def include_context(self) -> bool:
        """Whether entries carry ``context``; read at each query."""
        return bool(self.get_config().get("include_context"))

    def wrap_handler(
        self, switch: Any, entry: Any, call_next: Callable[..., Any]
    ) -> Callable[..., Any]:
        """smartswitch's hook: the recording layer around ``call_next``."""
        name = f"{switch.name}.{entry.name}" if switch.name else str(entry.name)
        func = entry.func
        qualname = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', name)}"
        return self.collector.wrap(
            call_next, name=name, qualname=qualname, switcher=switch.name or None
        )

    # The collector's queries, in smartswitch's forms: ``switch.collect.slowest()``.

    def history(
        self,
        *,
        last: int | None = None,
        first: int | None = None,
        handler: str | None = None,
        errors: bool | None = None,
        since: float | None = None,
        slowest: int | None = None,
        fastest: int | None = None,
        slower_than: float | None = None,
    ) -> list[CallEntry]:
        """Held calls, filtered as ``get_log_history`` did: by ``handler``,
        ``errors`` (True: failed only, False: returned only), ``since`` (Unix
        time in seconds) and ``slower_than`` (seconds); then the ``slowest`` or
        ``fastest`` n (slowest or fastest first; else oldest first); then the
        ``first`` or ``last`` n."""
        view = self.collector.view()
        index = view.query(
            handler=handler,
            errors=errors,
            since=since,
            slower_than=slower_than,
            slowest=slowest,
            fastest=fastest,
            first=first,
            last=last,
        )
        return view.entries_at(index, context=self.include_context)

    def errors(self, *, handler: str | None = None, last: int | None = None) -> list[CallEntry]:
        return self.history(handler=handler, errors=True, last=last)

    def slowest(self, n: int = 10, *, handler: str | None = None) -> list[CallEntry]:
        return self.history(handler=handler, slowest=n)

    def fastest(self, n: int = 10, *, handler: str | None = None) -> list[CallEntry]:
        return self.history(handler=handler, fastest=n)

    def slower_than(
        self,
        seconds: float | None = None,
        *,
        threshold: float | None = None,
        handler: str | None = None,
    ) -> list[CallEntry]:
        """Held calls that took at least ``threshold`` seconds, oldest first."""
        return self.history(handler=handler, slower_than=pick_threshold(seconds, threshold))

    def stats(
        self, handler: str | None = None, *, sort_by: str | None = None
    ) -> CallStats | StatsTable:
        """One handler's statistics, or every handler's (ordered by ``sort_by``)."""
        if handler is not None:
            if sort_by is not None:
                raise ValueError("sort_by orders every handler's statistics; give no handler")
            return self.collector.stats(handler)
        return self.collector.stats(sort_by=sort_by)

    def to_dict(self) -> dict[str, Any]:
        return self.collector.to_dict()

    def export(self, path: str | os.PathLike[str], format: ExportFormat = "json") -> int:
        return self.collector.export(path, format=format)

    def clear(self) -> None:
        self.collector.clear()


Switcher.register_plugin(PLUGIN_NAME, CollectPlugin)
