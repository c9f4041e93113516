"""The dependency arrows of docs/architecture.md, checked on every module's imports.

A rule broken anywhere (a report importing the benchmark, an attack importing the zoo, a
module other than the CLI importing reports) fails here with the module and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attacks", "uncertainty", "robustbench_local", "reports")

# (importing package, imported package) pairs that must never occur. A package is named by
# its dotted prefix; the longest matching prefix decides.
FORBIDDEN = {
    "attacks": ("uncertainty", "robustbench_local", "reports"),
    "uncertainty": ("attacks", "robustbench_local", "reports"),
    "robustbench_local.zoo": (
        "robustbench_local.bench",
        "robustbench_local.results",
        "robustbench_local.cli",
        "reports",
    ),
    "robustbench_local.results": (
        "robustbench_local.bench",
        "robustbench_local.zoo",
        "robustbench_local.cli",
        "reports",
    ),
    "robustbench_local.bench": ("robustbench_local.cli", "reports"),
    # Pure functions on models and tensors, composed by the benchmark, never the reverse.
    "robustbench_local.explain": (
        "robustbench_local.bench",
        "robustbench_local.results",
        "robustbench_local.zoo",
        "robustbench_local.cli",
        "reports",
    ),
    "robustbench_local.shifts": (
        "attacks",
        "uncertainty",
        "robustbench_local.bench",
        "robustbench_local.results",
        "robustbench_local.zoo",
        "robustbench_local.explain",
        "robustbench_local.cli",
        "reports",
    ),
    # Plot helpers on plain tensors, for labs: no run store, no benchmark.
    "robustbench_local.plotting": (
        "robustbench_local.bench",
        "robustbench_local.results",
        "robustbench_local.zoo",
        "robustbench_local.cli",
        "reports",
    ),
    "robustbench_local.registry": ("robustbench_local.", "reports"),
    "robustbench_local.devices": ("robustbench_local.", "reports"),
    "robustbench_local.atomic": ("robustbench_local.", "reports"),
    "reports": ("robustbench_local.bench", "robustbench_local.zoo", "robustbench_local.cli"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str) -> list[tuple[int, str]]:
    """Every absolute module a source imports (at any depth: lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _owner(module: str) -> str | None:
    matches = [p for p in FORBIDDEN if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def _violations(module: str, source: str) -> list[str]:
    """The forbidden imports of one module's source, as "line: module imports name"."""
    owner = _owner(module)
    if owner is None:
        return []
    out = []
    for line, imported in _imports(source):
        for banned in FORBIDDEN[owner]:
            if banned.endswith("."):  # any module below it
                hit = imported.startswith(banned)
            else:
                hit = imported == banned or imported.startswith(banned + ".")
            if hit:
                out.append(f"{line}: {module} imports {imported}")
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_arrow_points_one_way() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{v}"
        for path in _sources()
        for v in _violations(_module_name(path), path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_only_the_cli_imports_reports() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if not _module_name(path).startswith("reports")
        and _module_name(path) != "robustbench_local.cli"
        for line, imported in _imports(path.read_text(encoding="utf-8"))
        if imported == "reports" or imported.startswith("reports.")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("reports.fake", "from robustbench_local.bench.runner import run_benchmark\n"),
        ("attacks.fake", "def f():\n    import robustbench_local.zoo.models\n"),
        ("robustbench_local.results.fake", "from robustbench_local.bench import config\n"),
        ("uncertainty.fake", "from attacks import pgd\n"),
        ("robustbench_local.explain.fake", "from robustbench_local.bench import runner\n"),
        ("robustbench_local.shifts.fake", "import uncertainty\n"),
    ],
)
def test_the_rule_check_itself_catches_a_wrong_arrow(module: str, source: str) -> None:
    # The check must be able to fail: a source that breaks a rule is reported.
    assert _violations(module, source) != []
