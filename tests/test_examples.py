"""The lab example runs end to end as a course lab would run it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lab_attacks_example(tmp_path: Path) -> None:
    figure = tmp_path / "lab.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "lab_attacks.py"), "--out", str(figure)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    clean = float(re.search(r"clean test accuracy: ([\d.]+)%", done.stdout).group(1))
    assert clean > 90.0
    rows = re.findall(r"^\s*([\d.]+)\s+([\d.]+)%\s+([\d.]+)%$", done.stdout, re.MULTILINE)
    assert [float(eps) for eps, _, _ in rows] == [0.05, 0.1, 0.2]
    # PGD is at least as strong as FGSM at every eps, and accuracy falls with eps.
    assert all(float(p) <= float(f) + 1.0 for _, f, p in rows)
    assert float(rows[-1][2]) < float(rows[0][2])
    assert figure.stat().st_size > 10_000
