"""Screenshots of a page in headless Chromium (Debian's ``chromium`` package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def chromium() -> str:
    """The browser; skip without it, except when ``CI=true``, where that fails."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        reason = "Chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"chromium is required when CI=true: {reason}")
        pytest.skip(reason)
    return browser


def screenshot(url: str, shot: Path, *, size: tuple[int, int], keep_as: str) -> None:
    """Draw ``url`` at ``size`` into the PNG ``shot``; a copy is kept after the run
    as ``build/test-artifacts/<keep_as>`` (build/ is ignored by git)."""
    done = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={shot.parent / 'chromium-profile'}",
            f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    artifacts = REPO / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, artifacts / keep_as)
