"""Budget: a recorded call costs <= 300 ns net and <= 0.25x prometheus_client;
<= 150 ns when disabled or sampled out; stats() over 100k calls <= 25 ms
(docs/architecture.md, "Recording calls").

Every case wraps the same one-argument function and calls it in the same
Python loop; "net" is the time per call minus that of the bare function in
the same run. Cases are timed in interleaved rounds (each round times every
case once) and the best round counts: the one least disturbed by the rest of
the machine.

Anchors, measured in the same run:

- ``prometheus_client`` ``Histogram.time()`` used as a decorator;
- an OpenTelemetry span per call (``start_as_current_span`` as a decorator),
  with a ``BatchSpanProcessor`` and an exporter that does nothing;
- smartswitch: a handler with no plugin, with one plugin that does nothing
  (smartswitch's own cost per layer), and with ``CollectPlugin``.

    python bench/calls_overhead.py
    python bench/calls_overhead.py --check    # exit 1 when over budget
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from collectbus.calls import CallRecorder

RECORD_BUDGET_NS = 300.0
RECORD_VS_PROMETHEUS = 0.25
IDLE_BUDGET_NS = 150.0
STATS_BUDGET_MS = 25.0
STATS_CALLS = 100_000


def handler(x: int) -> int:
    return x


def prometheus_case() -> Callable[[int], int]:
    from prometheus_client import CollectorRegistry, Histogram

    histogram = Histogram("bench_seconds", "bench", registry=CollectorRegistry())
    timed: Callable[[int], int] = histogram.time()(handler)
    return timed


def otel_case() -> tuple[Callable[[int], int], Callable[[], None]]:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class NoopExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoopExporter()))
    tracer = provider.get_tracer("bench")
    traced: Callable[[int], int] = tracer.start_as_current_span("handler")(handler)
    return traced, provider.shutdown


def smartswitch_cases() -> dict[str, Callable[[int], int]]:
    from smartswitch import BasePlugin, Switcher

    from collectbus.calls.smartswitch import CollectPlugin

    class NoopPlugin(BasePlugin):  # type: ignore[misc]
        def wrap_handler(self, switch: Any, entry: Any, call_next: Any) -> Any:
            return call_next

    cases: dict[str, Callable[[int], int]] = {}
    for label, plugin in (
        ("smartswitch, no plugin", None),
        ("smartswitch, no-op plugin", NoopPlugin(name="noop")),
        ("smartswitch + CollectPlugin", CollectPlugin(max_history=10_000)),
    ):
        switch = Switcher("bench")
        if plugin is not None:
            switch.plug(plugin)
        switch(handler)
        cases[label] = switch["handler"]
    return cases


def time_cases(cases: dict[str, Callable[[int], int]], calls: int, rounds: int) -> dict[str, float]:
    """Best ns per call of each case over ``rounds`` interleaved rounds."""
    best = dict.fromkeys(cases, float("inf"))
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for label, fn in cases.items():
            t0 = clock()
            for i in range(calls):
                fn(i)
            best[label] = min(best[label], (clock() - t0) / calls)
    return best


def stats_ms(rounds: int) -> float:
    calls = CallRecorder(max_history=STATS_CALLS)
    names = [f"handler_{k}" for k in range(10)]
    wrapped = [calls.wrap(handler, name=n) for n in names]
    for i in range(STATS_CALLS):
        wrapped[i % 10](i)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        calls.stats()
        best = min(best, (time.perf_counter_ns() - t0) / 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per case per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args()

    traced, stop_otel = otel_case()
    cases: dict[str, Callable[[int], int]] = {
        "bare call": handler,
        "collectbus recording": CallRecorder().wrap(handler),
        "collectbus disabled": CallRecorder(enabled=False).wrap(handler),
        "collectbus sampled out": CallRecorder(sample=0.0).wrap(handler),
        "prometheus Histogram.time()": prometheus_case(),
        "OpenTelemetry span": traced,
        **smartswitch_cases(),
    }
    try:
        per_call = time_cases(cases, args.calls, args.rounds)
    finally:
        stop_otel()
    bare = per_call["bare call"]
    net = {label: ns - bare for label, ns in per_call.items()}
    prometheus = net["prometheus Histogram.time()"]
    switch_bare = per_call["smartswitch, no plugin"]
    stats = stats_ms(args.rounds)

    budgets: dict[str, tuple[float, str]] = {
        "collectbus recording": (RECORD_BUDGET_NS, f"<= {RECORD_BUDGET_NS:.0f} ns"),
        "collectbus disabled": (IDLE_BUDGET_NS, f"<= {IDLE_BUDGET_NS:.0f} ns"),
        "collectbus sampled out": (IDLE_BUDGET_NS, f"<= {IDLE_BUDGET_NS:.0f} ns"),
    }
    over: list[str] = []
    print(
        f"{args.rounds} rounds x {args.calls:,} calls per case; best round; net = minus bare call"
    )
    print()
    print(f"{'case':<30} {'ns/call':>9} {'net ns':>9} {'x prom':>7}  budget")
    for label, ns in per_call.items():
        if label.startswith("smartswitch"):
            continue
        extra = ""
        if label in budgets:
            limit, text = budgets[label]
            ok = net[label] <= limit
            extra = f"{text}: {'ok' if ok else 'OVER'}"
            if not ok:
                over.append(label)
        shown = f"{net[label] / prometheus:7.2f}" if label != "bare call" else " " * 7
        print(f"{label:<30} {ns:9.1f} {net[label]:9.1f} {shown}  {extra}")
    ratio = net["collectbus recording"] / prometheus
    ok = ratio <= RECORD_VS_PROMETHEUS
    if not ok:
        over.append("recording vs prometheus")
    print(
        f"{'recording / prometheus':<30} {'':>9} {'':>9} {ratio:7.2f}  "
        f"<= {RECORD_VS_PROMETHEUS}x: {'ok' if ok else 'OVER'}"
    )
    print()
    print(
        f"{'smartswitch case':<30} {'ns/call':>9} {'net ns':>9}  (net = minus smartswitch, no plugin)"
    )
    for label, ns in per_call.items():
        if label.startswith("smartswitch"):
            print(f"{label:<30} {ns:9.1f} {ns - switch_bare:9.1f}")
    collect_layer = per_call["smartswitch + CollectPlugin"] - per_call["smartswitch, no-op plugin"]
    print(f"{'CollectPlugin beyond a no-op layer':<30} {'':>9} {collect_layer:9.1f}")
    print()
    ok = stats <= STATS_BUDGET_MS
    if not ok:
        over.append("stats()")
    print(
        f"stats() over {STATS_CALLS:,} calls, 10 handlers: {stats:.1f} ms  "
        f"<= {STATS_BUDGET_MS:.0f} ms: {'ok' if ok else 'OVER'}"
    )
    if args.check and over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
