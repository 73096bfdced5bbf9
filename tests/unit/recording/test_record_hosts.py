"""--hosts a,b and --hosts @FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectbus.errors import RecordError
from collectbus.recording.hosts import parse_hosts


def test_a_comma_list_keeps_the_order_and_drops_duplicates() -> None:
    assert parse_hosts("n2,n1, n3,n2") == ["n2", "n1", "n3"]


def test_a_file_has_names_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# benchmark clients\nnode1\n\nnode2 node3  # rack 2\nnode4,node1\n")
    assert parse_hosts(f"@{path}") == ["node1", "node2", "node3", "node4"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("a,,b", "an empty host name"), ("a, b c", "a host name with a space")],
)
def test_bad_lists_are_named(value: str, message: str) -> None:
    with pytest.raises(RecordError, match=f"^--hosts {value!r}: {message}"):
        parse_hosts(value)


def test_a_missing_or_empty_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=f"^{tmp_path}/none: cannot read the host list"):
        parse_hosts(f"@{tmp_path}/none")
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(RecordError, match=f"^{tmp_path}/empty: no host names"):
        parse_hosts(f"@{tmp_path}/empty")
