"""The lab examples run end to end as a course lab would run them (small: --fast)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_example(name: str, out: Path) -> str:
    """Run examples/<name> small (--fast) on one thread, as CI does; its stdout."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), "--out", str(out), "--fast"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The labs themselves must not trip the library's misuse warnings (which point at the
    # calling line, here in examples/); other packages' deprecations are not ours to fail on.
    ours = [line for line in done.stderr.splitlines() if str(ROOT) in line and "Warning" in line]
    assert ours == [], done.stderr[-3000:]
    return done.stdout


def _figure(path: Path) -> None:
    assert path.read_bytes()[:4] == b"\x89PNG", path
    assert path.stat().st_size > 10_000, path


def test_lab_attacks_example(tmp_path: Path) -> None:
    stdout = _run_example("lab_attacks.py", tmp_path)
    clean = float(re.search(r"clean test accuracy: ([\d.]+)%", stdout).group(1))
    assert clean > 90.0
    rows = re.findall(r"^\s*([\d.]+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%$", stdout, re.MULTILINE)
    assert [float(eps) for eps, *_ in rows] == [0.05, 0.1, 0.15, 0.2]
    # PGD is at least as strong as FGSM at every eps (a margin for float rounding), and
    # accuracy falls with eps.
    assert all(float(p) <= float(f) + 1.0 for _, f, p, _ in rows)
    assert float(rows[-1][2]) < float(rows[0][2])
    # The examples' eps is one where some digits survive and some are fooled.
    shown_eps = float(re.search(r"examples at eps ([\d.]+)", stdout).group(1))
    robust = {float(eps): float(p) for eps, _, p, _ in rows}[shown_eps]
    assert 20.0 < robust < 80.0
    _figure(tmp_path / "examples.png")
    _figure(tmp_path / "accuracy_vs_eps.png")


def test_lab_uncertainty_example(tmp_path: Path) -> None:
    stdout = _run_example("lab_uncertainty.py", tmp_path)
    rows = re.findall(
        r"^\s*(MC dropout|ensemble of \d+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)\s+([\d.]+)$",
        stdout,
        re.MULTILINE,
    )
    assert [name for name, *_ in rows] == ["MC dropout", "ensemble of 3"]
    for _, clean, robust, auroc_epistemic, auroc_total in rows:
        assert float(clean) > 90.0
        assert float(robust) < float(clean)
        # Attacked digits carry more uncertainty than clean ones: well above chance.
        assert float(auroc_epistemic) > 0.7
        assert float(auroc_total) > 0.7
    ece = re.search(
        r"temperature ([\d.]+): ECE on clean test digits ([\d.]+) -> ([\d.]+).*"
        r"ECE on attacked digits \(eps [\d.]+\) ([\d.]+)",
        stdout,
    )
    assert ece is not None, stdout
    temperature, _, after, attacked = map(float, ece.groups())
    assert 0.2 < temperature < 5.0
    # Calibrated on clean digits, the network is still over-confident under attack.
    assert attacked > after + 0.05
    _figure(tmp_path / "epistemic.png")
    _figure(tmp_path / "reliability.png")


def test_every_example_config_and_readme_config_is_valid(tmp_path: Path, monkeypatch) -> None:
    from robustbench_local.bench.config import load_config, parse_config, tomllib

    configs = sorted((ROOT / "examples").glob("*.toml"))
    assert configs, "examples/ should hold at least one config"
    for path in configs:
        assert load_config(path).models and load_config(path).attacks
    # The README's user model: the package and checkpoint it names, as a user would have them.
    (tmp_path / "mypackage").mkdir()
    (tmp_path / "mypackage" / "__init__.py").write_text("")
    (tmp_path / "mypackage" / "models.py").write_text(
        "import torch\n\ndef build():\n    return torch.nn.Linear(64, 10)\n"
    )
    (tmp_path / "weights.safetensors").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README should show a config"
    for block in blocks:
        config = parse_config(tomllib.loads(block), source="README.md", base=tmp_path)
        assert [m.name for m in config.models][-1] == "mine"
