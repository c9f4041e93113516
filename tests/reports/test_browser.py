"""The report as a reader sees it: rendered by headless Chromium from a file:// URL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from reports.palette import OKABE_ITO
from robustbench_local.results.records import Summary

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; the test is skipped (before building a report) where it is missing."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not installed: apt-get install -y chromium")
    return path


def _screenshot(chromium: str, page: Path, out: Path, profile: Path) -> np.ndarray:
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1280,2000",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return imread(out)[..., :3]  # (H, W, 3) floats in [0, 1]


def test_the_report_renders_in_chromium(
    chromium: str, built_run: tuple[Path, Summary], tmp_path: Path
) -> None:
    run_dir, _ = built_run
    image = _screenshot(
        chromium, run_dir / "report.html", tmp_path / "shot.png", tmp_path / "profile"
    )
    assert image.shape[:2] == (2000, 1280)
    pixels = np.round(image.reshape(-1, 3) * 255).astype(np.int64)
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    assert len(np.unique(packed)) > 100  # text, tables and figures, not a blank page
    assert (pixels < 245).any(axis=1).mean() > 0.03  # not all white
    # the first figure's embedded PNG was decoded: the first model's colour is on screen
    blue = np.array([int(OKABE_ITO[0][i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - blue).max(axis=1) <= 12).sum() > 200
