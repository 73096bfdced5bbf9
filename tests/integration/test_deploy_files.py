"""The deployment files under deploy/: the systemd units pass ``systemd-analyze
verify`` and their command lines are collectbus's; the NATS cluster config
passes ``nats-server -t``. Each check is shown to refuse a broken copy."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import nats_unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("collectbus-agent.service", "collectbus-ingest.service")
#: Where the units expect the virtual environment's collectbus.
INSTALLED = "/opt/collectbus/bin/collectbus"


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        # Files, not a service: without the tool there is nothing to run them through.
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    return found


def _nats_server() -> str:
    found = shutil.which("nats-server")
    if found is None:
        nats_unavailable("nats-server is not installed (Debian: apt-get install nats-server)")
    return found


def _keys(unit: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))


def _verify(tool: str, folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "verify", *(str(folder / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", UNITS)
def test_the_units_say_what_operators_expect(name: str) -> None:
    keys = _keys((DEPLOY / "systemd" / name).read_text())
    assert keys["Restart"] == "on-failure"
    assert keys["User"] == "collectbus"
    assert "DynamicUser" not in keys  # a static user: see the unit's comment
    assert keys["StateDirectory"] == "collectbus"
    command = shlex.split(keys["ExecStart"])
    assert command[:3] == [INSTALLED, "--config", "/etc/collectbus/collectbus.toml"]
    assert command[3:] == (["daemon", "run"] if "agent" in name else ["ingest"])


@pytest.mark.parametrize("name", UNITS)
def test_the_units_command_lines_are_collectbus_commands(name: str) -> None:
    """The ExecStart line, run with --help by this virtual environment's collectbus."""
    command = shlex.split(_keys((DEPLOY / "systemd" / name).read_text())["ExecStart"])
    collectbus = Path(sys.executable).parent / "collectbus"
    done = subprocess.run(
        [str(collectbus), *command[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: collectbus" in done.stdout


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    collectbus = Path(sys.executable).parent / "collectbus"
    for name in UNITS:
        # verify checks that the program exists: this environment's, in place of /opt's.
        text = (DEPLOY / "systemd" / name).read_text().replace(INSTALLED, str(collectbus))
        (tmp_path / name).write_text(text)
    done = _verify(tool, tmp_path, list(UNITS))
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert not ours, "\n".join(ours)  # systemd warns, and still exits 0, on a bad line

    broken = (tmp_path / UNITS[0]).read_text().replace("Restart=on-failure", "Restart=sometimes")
    (tmp_path / "broken.service").write_text(broken.replace("StateDirectory=", "StateDirecotry="))
    done = _verify(tool, tmp_path, ["broken.service"])
    assert "Failed to parse service restart specifier" in done.stderr
    assert "Unknown key 'StateDirecotry'" in done.stderr


def test_the_nats_cluster_config_is_valid_for_each_node(tmp_path: Path) -> None:
    server = _nats_server()
    config = (DEPLOY / "nats" / "nats-server-cluster.conf").read_text()
    assert len(re.findall(r"nats-route://nats\d\.example\.org:6222", config)) == 3
    assert "jetstream" in config
    for node in ("nats1", "nats2", "nats3"):
        copy = tmp_path / f"{node}.conf"
        copy.write_text(config.replace("server_name: nats1", f"server_name: {node}"))
        done = subprocess.run(
            [server, "-t", "-c", str(copy)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "is valid" in done.stdout + done.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(config.replace("max_payload: 8MB", "max_payload: [8MB"))
    done = subprocess.run(
        [server, "-t", "-c", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
