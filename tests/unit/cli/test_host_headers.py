"""``collectbus host`` tables: short titles, and PSI one row per resource so
that no title is cut."""

from __future__ import annotations

import io

from rich.console import Console

from collectbus.cli.host import PSI_HEADERS, PSI_TABLE, family_headers, psi_by_resource
from collectbus.cli.output import render


def _psi_row() -> dict[str, object]:
    row: dict[str, object] = {"time": "2026-12-07 18:30:43 CET", "host": "node1"}
    for n, resource in enumerate(("cpu", "io", "memory")):
        for kind in ("some", "full"):
            row[f"psi_{resource}_{kind}_percent"] = float(n)
            for window in (10, 60, 300):
                row[f"psi_{resource}_{kind}_avg{window}"] = float(n + window)
    row["psi_cpu_full_percent"] = None  # cpu has no full line before Linux 5.13
    return row


def test_psi_becomes_one_row_per_resource() -> None:
    rows = psi_by_resource([_psi_row()])
    assert [r["resource"] for r in rows] == ["cpu", "io", "memory"]
    assert rows[1]["some_avg60"] == 61.0
    assert rows[0]["full_percent"] is None
    assert set(rows[2]) == set(PSI_TABLE)


def test_psi_table_titles_are_whole_at_160_columns() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, color_system=None)
    render(
        psi_by_resource([_psi_row()]), "table", columns=PSI_TABLE, headers=PSI_HEADERS,
        console=console,
    )  # fmt: skip
    text = out.getvalue()
    for title in PSI_HEADERS.values():
        assert title in text
    assert "…" not in text


def test_family_titles_are_short_and_say_units_only_where_values_do_not() -> None:
    headers = family_headers(
        ["cpu_percent", "cpu_user_percent", "read_bytes_per_s", "pgfault_per_s", "r_s",
         "aqu_sz", "mem_used_bytes", "boot_time_s", "rx_packets_per_s"]
    )  # fmt: skip
    assert headers == {
        "cpu_percent": "cpu %",
        "cpu_user_percent": "user %",
        "read_bytes_per_s": "read",
        "pgfault_per_s": "pgfault/s",
        "r_s": "r/s",
        "aqu_sz": "aqu-sz",
        "mem_used_bytes": "mem used",
        "boot_time_s": "booted",
        "rx_packets_per_s": "rx packets/s",
    }
