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
