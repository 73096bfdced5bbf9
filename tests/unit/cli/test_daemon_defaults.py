"""Where the daemon's PID file and log are when the configuration says nothing."""

from __future__ import annotations

import pytest

from collectbus.config import load_config
from collectbus.pidfile import default_log_file, default_pid_file


def test_default_files_are_per_user_state_not_per_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", "/home/u")
    assert default_pid_file({}) == "/home/u/.local/state/collectbus/collectbus.pid"
    assert default_log_file({"XDG_STATE_HOME": "/s"}) == "/s/collectbus/collectbus.log"
    assert default_pid_file({"XDG_STATE_HOME": "relative"}).startswith("/home/u/.local/state/")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_pid_file({}) == "/run/collectbus/collectbus.pid"
    assert default_log_file({}) == "/var/lib/collectbus/collectbus.log"


def test_a_configured_pid_file_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/s")
    env = {"COLLECTBUS_PID_FILE": "/p/x.pid"}
    config = load_config(None, env=env, overrides={})
    assert config.daemon.pid_file == "/p/x.pid"
    assert config.daemon.log_file == "/s/collectbus/collectbus.log"
