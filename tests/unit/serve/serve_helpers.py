"""Reading an exposition back, and promtool, for the serve tests."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if the series is absent (a counter not yet seen)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def counters(samples: Samples) -> Samples:
    """The samples that must never go down: counters, histogram counts, sums and buckets."""
    return {
        key: v
        for key, v in samples.items()
        if key[0].endswith(("_total", "_count", "_sum", "_bucket"))
    }


def promtool() -> str:
    """The promtool binary; skips without it, fails when CI=true."""
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"promtool is required when CI=true: {reason}")
        pytest.skip(reason)
    return path


def promtool_check(text: str) -> None:
    """Assert that ``promtool check metrics`` finds no problem in the exposition."""
    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "", checked.stdout
