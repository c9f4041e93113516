"""The gradient-masking checks on crafted results: each fires when it should, only then."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_local.bench.attack_registry import ATTACKS, attack_entry, attack_info
from robustbench_local.results.masking import compare_probe, large_eps_allowed, masking_warnings
from robustbench_local.results.records import ResultRow

NAMES = {"fgsm": "fgsm", "pgd-20": "pgd", "square": "square"}
HEALTHY = {
    "n": 100.0,
    "zero_grad_fraction": 0.0,
    "saturated_fraction": 0.0,
    "nan_grad_fraction": 0.0,
    "repeat_max_abs_diff": 0.0,
    "repeat_grad_rel_diff": 0.0,
    "large_eps": 1.0,
    "large_eps_accuracy": 0.0,
    "chance": 0.1,
}


def _warnings(rows, names, diagnostics, probes=()) -> list[str]:
    """The checks, with each label's kind taken from the registry as the runner stores it."""
    infos = {label: attack_info(name) for label, name in names.items()}
    return masking_warnings(rows, infos, diagnostics, probes)


def _rows(table: dict[str, list[float]], eps=(0.0, 0.1, 0.2)) -> list[ResultRow]:
    return [
        ResultRow("m", attack, e, {"accuracy": acc, "n": 100.0})
        for attack, accs in table.items()
        for e, acc in zip(eps, accs, strict=True)
    ]


def test_healthy_results_raise_nothing() -> None:
    rows = _rows(
        {"fgsm": [0.99, 0.7, 0.4], "pgd-20": [0.99, 0.6, 0.2], "square": [0.99, 0.65, 0.3]}
    )
    assert _warnings(rows, NAMES, {"m": HEALTHY}) == []


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"pgd-20": [0.99, 0.5, 0.6]},
            "accuracy under pgd-20 rises with eps, from 50.0% at eps 0.1 to 60.0% at eps 0.2",
        ),
        (
            {"fgsm": [0.99, 0.5, 0.2], "pgd-20": [0.99, 0.6, 0.2]},
            "pgd-20 is weaker than fgsm at eps 0.1 (60.0% vs 50.0%",
        ),
        (
            {"pgd-20": [0.99, 0.9, 0.9], "square": [0.99, 0.5, 0.3]},
            "the gradient-free square beats every gradient attack at eps 0.1 (50.0% vs 90.0%)",
        ),
    ],
)
def test_each_result_check_fires(table, expected) -> None:
    warnings = _warnings(_rows(table), NAMES, {})
    assert any(expected in w for w in warnings), warnings


def test_differences_within_noise_are_not_flagged() -> None:
    # Two samples of 100 either way: noise, not masking.
    rows = _rows({"fgsm": [0.99, 0.50, 0.20], "pgd-20": [0.99, 0.52, 0.21]})
    assert _warnings(rows, NAMES, {}) == []


def test_rows_are_keyed_by_label_so_two_entries_of_one_attack_stay_apart() -> None:
    # pgd-100 loses to fgsm; pgd-10 does not. Keyed by registry name, one would hide the other.
    names = {"fgsm": "fgsm", "pgd-10": "pgd", "pgd-100": "pgd"}
    rows = _rows(
        {"fgsm": [0.99, 0.5, 0.2], "pgd-10": [0.99, 0.4, 0.1], "pgd-100": [0.99, 0.7, 0.3]}
    )
    warnings = _warnings(rows, names, {})
    assert any("pgd-100 is weaker than fgsm at eps 0.1" in w for w in warnings), warnings
    assert not any("pgd-10 is" in w for w in warnings), warnings


def test_kinds_come_from_the_registry_not_from_names() -> None:
    # A label that does not say what it is: its registry entry does.
    names = {"one-step": "fgsm", "mine": "apgd-dlr", "search": "square"}
    rows = _rows(
        {"one-step": [0.99, 0.5, 0.2], "mine": [0.99, 0.7, 0.3], "search": [0.99, 0.1, 0.0]}
    )
    warnings = "\n".join(_warnings(rows, names, {}))
    assert "mine is weaker than one-step at eps 0.1" in warnings
    assert "the gradient-free search beats every gradient attack at eps 0.1" in warnings


def test_every_attack_has_a_kind_and_fgsm_is_the_single_step() -> None:
    kinds = {name: attack_entry(name).kind for name in ATTACKS.names()}
    assert kinds == {
        "fgsm": "gradient",
        "pgd": "gradient",
        "apgd-ce": "gradient",
        "apgd-dlr": "gradient",
        "square": "gradient-free",
        "pgd-adaptive": "adaptive",
        "pgd-eot": "eot",
        "apgd-eot": "eot",
    }
    assert [n for n in ATTACKS.names() if not attack_entry(n).iterative] == ["fgsm"]


def test_adaptive_rows_are_kept_out_of_the_comparisons() -> None:
    # A detection-evasion attack may leave more accuracy than fgsm (as a gradient attack it
    # would be "weaker than fgsm"), more at a larger eps, and more than square.
    names = {"fgsm": "fgsm", "pgd-adaptive": "pgd-adaptive", "square": "square"}
    rows = _rows(
        {
            "fgsm": [0.99, 0.6, 0.3],
            "pgd-adaptive": [0.99, 0.8, 0.9],
            "square": [0.99, 0.62, 0.35],
        }
    )
    assert _warnings(rows, names, {}) == []


def test_eot_rows_are_not_held_to_a_single_gradient_step() -> None:
    # pgd-eot maximises the loss averaged over random transformations: on the plain input it
    # may fool fewer samples than one fgsm step, by design, and that is no masking sign.
    names = {"fgsm": "fgsm", "pgd-eot": "pgd-eot"}
    rows = _rows({"fgsm": [0.99, 0.5, 0.2], "pgd-eot": [0.99, 0.7, 0.4]})
    assert _warnings(rows, names, {}) == []
    # ...but its accuracy must still fall as eps grows (a larger ball holds every smaller one).
    rising = _rows({"fgsm": [0.99, 0.5, 0.2], "pgd-eot": [0.99, 0.4, 0.8]})
    assert any("rises with eps" in w for w in _warnings(rising, names, {}))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"zero_grad_fraction": 0.5}, "input gradient is exactly zero for 50.0% of samples"),
        ({"nan_grad_fraction": 0.01}, "input gradient holds NaN for 1.0% of samples"),
        # Chance plus 5 points used to pass: 15 of 100 survivors is an attack that fails.
        ({"large_eps_accuracy": 0.15}, "leaves 15.0% accuracy (15 of 100 samples"),
        ({"large_eps_accuracy": 0.6}, "leaves 60.0% accuracy (60 of 100 samples"),
        ({"repeat_max_abs_diff": 0.3}, "two identical calls gave outputs 0.3 apart"),
        ({"repeat_grad_rel_diff": 0.5}, "two identical calls gave input gradients 0.5 apart"),
    ],
)
def test_each_diagnostic_check_fires(change, expected) -> None:
    warnings = _warnings([], NAMES, {"m": {**HEALTHY, **change}})
    assert len(warnings) == 1 and expected in warnings[0], warnings
    assert "remedy:" in warnings[0]


def test_a_few_large_eps_survivors_are_tolerated() -> None:
    allowed = large_eps_allowed(100)
    assert 1 <= allowed <= 5
    ok = {**HEALTHY, "large_eps_accuracy": allowed / 100}
    assert _warnings([], NAMES, {"m": ok}) == []
    saturated = {**HEALTHY, "saturated_fraction": 0.9}  # the runner's margin fallback handles it
    assert _warnings([], NAMES, {"m": saturated}) == []


def _probe_case(probe_fooled: int, gradient_fooled: int, both: int, n: int = 100):
    """Robust flags (n,) for the probe and one gradient attack with the given overlaps."""
    probe = np.ones(n, bool)
    gradient = np.ones(n, bool)
    probe[:both] = gradient[:both] = False
    probe[both : both + probe_fooled] = False
    gradient[both + probe_fooled : both + probe_fooled + gradient_fooled] = False
    return compare_probe("m", 0.2, probe, {"pgd-20": gradient, "fgsm": gradient}, 100)


def test_a_clearly_stronger_probe_is_flagged_with_its_evidence() -> None:
    comparison = _probe_case(probe_fooled=40, gradient_fooled=2, both=10)
    assert comparison.probe_only == 40 and comparison.gradient_only == 2
    assert comparison.probe_accuracy == pytest.approx(0.50)
    assert comparison.gradient_accuracy == pytest.approx(0.88)
    (warning,) = _warnings([], NAMES, {}, [comparison])
    assert "the gradient-free probe (square, 100 queries) leaves 50.0% robust accuracy" in warning
    assert "at eps 0.2 where the gradient attacks (fgsm, pgd-20) leave 88.0%" in warning
    assert "it fooled 40 they did not, they fooled 2 it did not" in warning
    assert "remedy: add apgd-dlr and square to the config" in warning


@pytest.mark.parametrize(
    ("probe_fooled", "gradient_fooled"),
    [(0, 20), (3, 1), (5, 5), (8, 3)],  # weaker, or within a fair coin's noise
)
def test_a_probe_within_noise_is_not_flagged(probe_fooled, gradient_fooled) -> None:
    comparison = _probe_case(probe_fooled, gradient_fooled, both=30)
    assert _warnings([], NAMES, {}, [comparison]) == []


def test_every_warning_names_a_remedy() -> None:
    rows = _rows(
        {"fgsm": [0.99, 0.5, 0.2], "pgd-20": [0.99, 0.9, 0.95], "square": [0.99, 0.1, 0.0]}
    )
    broken = {
        **HEALTHY,
        "zero_grad_fraction": 0.5,
        "nan_grad_fraction": 0.1,
        "large_eps_accuracy": 0.5,
        "repeat_max_abs_diff": 0.1,
        "repeat_grad_rel_diff": 0.1,
    }
    probe = _probe_case(probe_fooled=50, gradient_fooled=0, both=0)
    warnings = _warnings(rows, NAMES, {"m": broken}, [probe])
    assert len(warnings) >= 8
    assert all("remedy:" in w for w in warnings), warnings
