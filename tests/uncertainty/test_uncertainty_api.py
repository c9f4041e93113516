"""The public surface and the dependency rules of the uncertainty package."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

import uncertainty
from uncertainty import metrics

PACKAGE = Path(uncertainty.__file__).parent
FORBIDDEN = {"attacks", "robustbench_local", "reports", "matplotlib"}


def test_public_api_is_exported():
    for name in (
        "DeepEnsemble",
        "MCDropout",
        "decompose",
        "Uncertainty",
        "TemperatureScaler",
        "HeteroscedasticHead",
        "sample_probs",
        "metrics",
    ):
        assert name in uncertainty.__all__
        assert getattr(uncertainty, name) is not None
    for name in metrics.__all__:
        assert callable(getattr(metrics, name)), name
    assert (PACKAGE / "py.typed").exists()


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_forbidden_imports_anywhere_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        bad = _imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_no_print_or_bare_assert_in_the_package():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Assert), f"assert in {path.name}:{node.lineno}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"print in {path.name}:{node.lineno}"


def test_wrappers_are_models_end_to_end():
    """The design's promise: a wrapper's output is a logit vector any metric accepts."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for model in (
        uncertainty.MCDropout(net, samples=5, generator=0),
        uncertainty.DeepEnsemble([net, net]),
    ):
        logits = model(x)
        assert logits.shape == (16, 3)
        probs = logits.softmax(-1).detach()
        assert 0 <= metrics.ece(probs, y) <= 1
        u = uncertainty.decompose(uncertainty.sample_probs(model, x).detach())
        assert u.total.shape == (16,)
