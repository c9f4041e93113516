"""The gradient-masking checks on crafted results: each fires when it should, only then."""

from __future__ import annotations

import pytest

from robustbench_local.checks import masking_warnings

NAMES = {"fgsm": "fgsm", "pgd-20": "pgd", "square": "square"}
HEALTHY = {
    "n": 100.0,
    "zero_grad_fraction": 0.0,
    "nan_grad_fraction": 0.0,
    "repeat_max_abs_diff": 0.0,
    "large_eps": 1.0,
    "large_eps_accuracy": 0.0,
    "chance": 0.1,
}


def _rows(table: dict[str, list[float]], eps=(0.0, 0.1, 0.2)) -> list[dict]:
    return [
        {"model": "m", "attack": attack, "eps": e, "accuracy": acc, "n": 100.0}
        for attack, accs in table.items()
        for e, acc in zip(eps, accs, strict=True)
    ]


def test_healthy_results_raise_nothing() -> None:
    rows = _rows(
        {"fgsm": [0.99, 0.7, 0.4], "pgd-20": [0.99, 0.6, 0.2], "square": [0.99, 0.65, 0.3]}
    )
    assert masking_warnings(rows, NAMES, {"m": HEALTHY}) == []


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
    warnings = masking_warnings(_rows(table), NAMES, {})
    assert any(expected in w for w in warnings), warnings


def test_differences_within_noise_are_not_flagged() -> None:
    # Two samples of 100 either way: noise, not masking.
    rows = _rows({"fgsm": [0.99, 0.50, 0.20], "pgd-20": [0.99, 0.52, 0.21]})
    assert masking_warnings(rows, NAMES, {}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"zero_grad_fraction": 0.5}, "input gradient is exactly zero for 50.0% of samples"),
        ({"nan_grad_fraction": 0.01}, "input gradient holds NaN for 1.0% of samples"),
        ({"large_eps_accuracy": 0.6}, "PGD leaves 60.0% accuracy where chance is 10.0%"),
        ({"repeat_max_abs_diff": 0.3}, "two identical calls gave outputs 0.3 apart"),
    ],
)
def test_each_diagnostic_check_fires(change, expected) -> None:
    warnings = masking_warnings([], NAMES, {"m": {**HEALTHY, **change}})
    assert len(warnings) == 1 and expected in warnings[0]
