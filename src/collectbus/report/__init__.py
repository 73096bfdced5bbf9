"""Reports of recorded host metrics: one self-contained HTML page (:mod:`.html`)."""

from __future__ import annotations

from collectbus.report.html import ReportData, render

__all__ = ["ReportData", "render"]
