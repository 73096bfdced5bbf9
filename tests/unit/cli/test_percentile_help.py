"""``calls --stats`` and ``aggregate show`` say how each computes its percentiles."""

from __future__ import annotations

from click.testing import CliRunner

from collectbus.cli.main import cli


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_calls_help_says_its_percentiles_are_exact_interpolation() -> None:
    text = _help("calls")
    assert "exact" in text
    assert "linear interpolation" in text


def test_aggregate_show_help_says_its_percentiles_are_sketch_estimates() -> None:
    text = _help("aggregate", "show")
    assert "sketch" in text
    assert "within 1 %" in text
