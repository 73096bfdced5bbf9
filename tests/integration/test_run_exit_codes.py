"""``collectbus run``'s exit code says what happened (cli/exitcodes.py):
0 all stored, 1 nothing collected or not all written, 2 nothing to run,
4 partly done."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli_helpers import collectbus, collectbus_env


def _run(tmp_path: Path, config: str, *args: str) -> tuple[int, str, str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    (tmp_path / "collectbus.toml").write_text(config)
    env["COLLECTBUS_CONFIG"] = str(tmp_path / "collectbus.toml")
    done = collectbus(*args, "run", "--duration", "2s", "--interval", "500ms",
                      cwd=tmp_path, env=env)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_every_collector_disabled_is_refused_before_running(tmp_path: Path) -> None:
    code, out, err = _run(
        tmp_path,
        "[collectors.host]\nenabled = false\n[collectors.host_inventory]\nenabled = false\n",
    )
    assert code == 2
    assert out == ""  # no run, no summary
    assert "every collector is disabled: nothing to run" in err.splitlines()[-2]
    assert not (tmp_path / "cb.db").exists()  # refused before the store is created


def test_a_proc_root_where_everything_fails_exits_1_without_a_next_step(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = _run(
        tmp_path,
        "[collectors.host_inventory]\nenabled = false\n",
        "--proc-root",
        str(tmp_path / "empty"),
    )
    assert code == 1, err
    assert "collector errors" in out
    assert "next: collectbus host" not in err


def test_some_collections_failing_is_partly_done(tmp_path: Path) -> None:
    # The inventory reads what it can of an empty /proc; the host sample fails.
    (tmp_path / "empty").mkdir()
    code, _, err = _run(tmp_path, "", "--proc-root", str(tmp_path / "empty"))
    assert code == 4, err
    assert "collectbus: partly done: " in err
    assert "collections failed; the others are stored" in err
    assert "next: collectbus host" not in err


def test_a_read_only_database_fails_before_collecting(tmp_path: Path) -> None:
    # A read-only SQLite file (opened read-only, as a file without write
    # permission is for a user other than root) fails at once, as an
    # unreachable PostgreSQL does: no run, no summary.
    db = tmp_path / "ro.db"
    env = collectbus_env(tmp_path, f"sqlite:///{db}")
    assert collectbus("db", "init", cwd=tmp_path, env=env).returncode == 0
    env["COLLECTBUS_DB_URL"] = f"sqlite:///file:{db}?mode=ro&uri=true"
    done = collectbus("run", "--duration", "2s", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith("collectbus: error: ")
    assert "write (checked before collecting) failed: the database is read-only" in first
