"""Shell completion (click's ``_COLLECTBUS_COMPLETE``) through the lazy command
group: commands, subcommands, options and choices complete in bash, zsh and fish."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli_helpers import collectbus, collectbus_env


def _complete(tmp_path: Path, words: str, shell: str = "bash") -> list[str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    env.update(
        _COLLECTBUS_COMPLETE=f"{shell}_complete",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split(" ")) - 1),
    )
    result = collectbus(cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    if shell == "bash":
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]
    return result.stdout.split()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_is_printed_for_each_shell(tmp_path: Path, shell: str) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    env["_COLLECTBUS_COMPLETE"] = f"{shell}_source"
    result = collectbus(cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "_COLLECTBUS_COMPLETE" in result.stdout
    assert not (tmp_path / "unused.db").exists()


def test_commands_subcommands_options_and_choices_complete(tmp_path: Path) -> None:
    assert _complete(tmp_path, "collectbus ho") == ["host", "hosts"]
    assert _complete(tmp_path, "collectbus hosts --sort ") == ["cpu", "mem", "load", "name", "last"]
    assert _complete(tmp_path, "collectbus collect ") == [
        "host",
        "jobusage",
        "pbs",
        "processes",
        "slurm",
    ]
    assert _complete(tmp_path, "collectbus daemon st") == ["start", "status", "stop"]
    assert _complete(tmp_path, "collectbus host --me") == ["--metric"]
    assert _complete(tmp_path, "collectbus host --format ") == ["table", "json", "csv"]
    assert "--utc" in _complete(tmp_path, "collectbus --u")


def test_zsh_completion_lists_the_commands(tmp_path: Path) -> None:
    assert "host" in _complete(tmp_path, "collectbus h", shell="zsh")
