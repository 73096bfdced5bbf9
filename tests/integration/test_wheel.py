"""The wheel works outside the checkout: built, installed into a new virtual
environment (its dependencies from the package registry), then ``db init``,
``run`` and ``host`` from another folder, with the migrations, the JSON
Schemas and the sqltail sample shipped as package data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_wheel_installs_and_runs_from_another_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("collectbus-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path)
    if installed.returncode != 0:
        reason = f"cannot install the wheel's dependencies: {installed.stderr.strip()[-300:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTBUS_", "PYTHON"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        COLLECTBUS_DB_URL=f"sqlite:///{elsewhere / 'cb.db'}",
    )
    command = str(env_dir / "bin" / "collectbus")
    # Nothing of the checkout on the path: the installed package alone.
    where = _run(
        [str(python), "-c", "import collectbus; print(collectbus.__file__)"], elsewhere, env
    )
    assert str(env_dir) in where.stdout, where.stdout
    init = _run([command, "db", "init"], elsewhere, env)
    assert init.returncode == 0, init.stderr
    run = _run([command, "run", "--duration", "3s", "--interval", "500ms"], elsewhere, env)
    assert run.returncode == 0, run.stderr
    host = _run([command, "host", "--since", "5m", "--format", "json"], elsewhere, env)
    assert host.returncode == 0, host.stderr
    assert json.loads(host.stdout)
    shipped = _run(
        [
            str(python),
            "-c",
            "from importlib.resources import files as f; import collectbus as c;"
            "print(sum(1 for p in f(c).joinpath('cli', 'schemas').iterdir()),"
            " f(c).joinpath('aggregate', 'sqltail', 'README.md').is_file())",
        ],
        elsewhere,
        env,
    )
    count, guide = shipped.stdout.split()
    assert int(count) >= 10, shipped.stderr
    assert guide == "True"
