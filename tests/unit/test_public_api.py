"""The public API at the top of the package: ``from collectbus import X``.

Each name is the very object of its home module, listed by ``dir()``, loaded
only when asked for (``import collectbus`` stays light), and typed for mypy.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import collectbus

# Where each public name lives, written out here rather than read from the package.
HOMES = {
    "CollectionBus": ("collectbus.bus.scheduler", "CollectionBus"),
    "open_store": ("collectbus.store.store", "open"),
    "Store": ("collectbus.store.store", "Store"),
    "HostCollector": ("collectbus.collectors.host.collector", "HostCollector"),
    "CallRecorder": ("collectbus.calls.recorder", "CallRecorder"),
    "Recorder": ("collectbus.recording.recorder", "Recorder"),
    "read_aggregates": ("collectbus.aggregate.view", "read_aggregates"),
    **{
        name: ("collectbus.records", name)
        for name in (
            "HostSample",
            "CollectionEvent",
            "CallRecord",
            "JobRecord",
            "NodeRecord",
            "QueueRecord",
            "SystemRecord",
        )
    },
    **{
        name: ("collectbus.errors", name)
        for name in (
            "CollectBusError",
            "ConfigError",
            "CollectError",
            "ParseError",
            "CommandFailed",
            "CommandTimeout",
            "CollectorTimeout",
            "StoreError",
            "SchemaError",
            "BusError",
            "DaemonError",
            "RecordError",
        )
    },
}
HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "pydantic")
REPO = Path(__file__).resolve().parents[2]


def test_all_is_the_documented_names_and_the_version() -> None:
    assert sorted(collectbus.__all__) == sorted([*HOMES, "__version__"])
    assert len(set(collectbus.__all__)) == len(collectbus.__all__)


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_name_is_the_object_of_its_home_module(name: str) -> None:
    module, attr = HOMES[name]
    home = getattr(importlib.import_module(module), attr)
    assert getattr(collectbus, name) is home
    namespace: dict[str, object] = {}
    exec(f"from collectbus import {name} as imported", namespace)
    assert namespace["imported"] is home


def test_every_error_is_a_collectbus_error() -> None:
    errors = [n for n, (module, _) in HOMES.items() if module == "collectbus.errors"]
    for name in errors:
        assert issubclass(getattr(collectbus, name), collectbus.CollectBusError), name


def test_version_is_the_installed_distribution_version() -> None:
    assert collectbus.__version__ == importlib.metadata.version("collectbus")


def test_dir_lists_every_public_name() -> None:
    listed = dir(collectbus)
    assert set(collectbus.__all__) <= set(listed)
    assert listed == sorted(listed)


def test_an_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'collectbus' has no attribute 'open'"):
        _ = collectbus.open  # type: ignore[attr-defined]
    assert not hasattr(collectbus, "NoSuchThing")
    with pytest.raises(ImportError, match="NoSuchThing"):
        exec("from collectbus import NoSuchThing", {})


def test_import_collectbus_imports_no_heavy_library() -> None:
    """Checked in a fresh interpreter; then asking for the store does import
    SQLAlchemy, which shows the check sees an import when there is one."""
    code = textwrap.dedent(
        f"""
        import json, sys
        heavy = set({HEAVY!r})
        def loaded():
            return sorted({{m.split(".")[0] for m in sys.modules}} & heavy)
        import collectbus
        from collectbus import __version__
        dir(collectbus)
        light = loaded()
        collectbus.open_store
        print(json.dumps([light, loaded()]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    light, after_store = json.loads(done.stdout)
    assert light == []
    assert "sqlalchemy" in after_store


@pytest.mark.slow
def test_mypy_sees_every_public_name(tmp_path: Path) -> None:
    """Without the ``TYPE_CHECKING`` imports mypy would see ``object`` (the
    return type of the module's ``__getattr__``) for each name."""
    from mypy import api

    names = sorted(set(collectbus.__all__))
    snippet = tmp_path / "use_api.py"
    snippet.write_text(
        "import collectbus\n"
        + "".join(f"reveal_type(collectbus.{name})\n" for name in names)
        + "store: collectbus.Store = collectbus.open_store('sqlite://')\n"
        + "wrong: int = collectbus.open_store\n"
    )
    stdout, _, _ = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(snippet),
        ]
    )
    lines = stdout.splitlines()
    revealed = [line for line in lines if "Revealed type is" in line]
    assert len(revealed) == len(names), stdout
    for name, line in zip(names, revealed, strict=True):
        revealed_type = line.partition("Revealed type is ")[2]
        assert revealed_type not in ('"object"', '"builtins.object"', '"Any"'), (name, line)
    errors = [line for line in lines if ": error:" in line]
    # The one deliberate mistake, and nothing else.
    assert len(errors) == 1, stdout
    assert f"use_api.py:{len(names) + 3}: error: Incompatible types" in errors[0]
