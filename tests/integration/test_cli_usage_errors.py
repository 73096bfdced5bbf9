"""Bad command lines, as a user types them: one error line, one hint, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ["jobs", "--bogus"],
            # The global options are the command's too (given after it).
            "jobs: no such option --bogus (did you mean one of --user, --verbose?)",
            "collectbus jobs --help",
        ),
        (["--bogus"], "no such option --bogus (did you mean --verbose?)", "collectbus --help"),
        (["jobs", "-Z"], "jobs: no such option -Z", "collectbus jobs --help"),
        (
            ["db", "status", "--bogus"],
            "db status: no such option --bogus (did you mean --verbose?)",
            "collectbus db status --help",
        ),
        (
            ["aggregate", "show", "--bogus"],
            "aggregate show: no such option --bogus (did you mean --verbose?)",
            "collectbus aggregate show --help",
        ),
        (
            ["aggregate", "show"],
            "aggregate show: missing argument NAME",
            "collectbus aggregate show --help",
        ),
        (
            ["record"],
            "record: missing argument -- CMD [ARGS]...",
            "collectbus record --help",
        ),
        (
            ["jobs", "--format", "xml"],
            "jobs: --format: 'xml' is not one of 'table', 'json', 'csv'",
            "collectbus jobs --help",
        ),
        (
            ["analyze", "wait-times", "--by", "nobody"],
            "analyze wait-times: --by: 'nobody' is not one of"
            " 'user', 'project', 'queue', 'size', 'cluster'",
            "collectbus analyze wait-times --help",
        ),
        (
            ["jobs", "--limit", "many"],
            "jobs: --limit: 'many' is not a valid integer range",
            "collectbus jobs --help",
        ),
        (
            ["run", "--duration", "soon"],
            "run: --duration: 'soon' is not a duration (examples: 10, '500ms', '10s', '5m', '1h')",
            "collectbus run --help",
        ),
        (["jbos"], "no such command jbos (did you mean jobs?)", "collectbus --help"),
        (
            ["aggregate", "shw"],
            "aggregate: no such command shw (did you mean show?)",
            "collectbus aggregate --help",
        ),
        (
            ["jobs", "--since"],
            "jobs: option --since requires an argument",
            "collectbus jobs --help",
        ),
        (
            ["db", "status", "--exact=yes"],
            "db status: option --exact does not take a value",
            "collectbus db status --help",
        ),
        (["--db"], "option --db requires an argument", "collectbus --help"),
        (
            ["jobs", "extra"],
            "jobs: got unexpected extra argument (extra)",
            "collectbus jobs --help",
        ),
        (
            ["calls", "--stats", "--slowest", "3"],
            "calls: --stats and --slowest do not go together",
            "collectbus calls --help",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_a_hint(
    tmp_path: Path, env: dict[str, str], args: list[str], error: str, hint: str
) -> None:
    done = collectbus_in_process(*args, cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"collectbus: error: {error}\n  hint: {hint}\n"
    assert not (tmp_path / "collectbus.db").exists()


def test_the_hint_points_to_help_that_is_still_clicks(tmp_path: Path, env: dict[str, str]) -> None:
    done = collectbus("aggregate", "show", "--help", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: collectbus aggregate show [OPTIONS] NAME\n")
    assert "-h, --help" in done.stdout


def test_a_group_without_its_command_shows_its_help(tmp_path: Path, env: dict[str, str]) -> None:
    done = collectbus("db", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: collectbus db [OPTIONS] COMMAND [ARGS]...\n")
    assert "status" in done.stderr
    assert "error" not in done.stderr
