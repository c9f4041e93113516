"""Known answers for the choices a report makes: the eps, the attack, colours, scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports.figures.examples import amplify
from reports.formatting import num
from reports.headline import headline
from reports.palette import OKABE_ITO, Palette
from reports.selection import chosen_eps, model_order, strongest_attack
from robustbench_local.results.records import Summary


@pytest.mark.parametrize(
    ("eps", "expected"),
    [
        ([0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3], 0.1),  # the default digits sweep
        ([0.0, 2 / 255, 8 / 255, 16 / 255], 16 / 255),
        ([0.0, 0.2, 0.3], 0.2),  # nothing at or below 0.1: the smallest positive
        ([0.5, 1.0, 2.0], 0.5),  # an l2 sweep
        ([0.0], None),
        ([], None),
    ],
)
def test_chosen_eps(eps: list[float], expected: float | None) -> None:
    assert chosen_eps(eps) == expected


def _summary(rows: list[tuple[str, str, float, float]], models=(), attacks=()) -> Summary:
    return Summary.from_dict(
        {
            "run": {
                "config": {
                    "models": [{"name": m} for m in models],
                    "attacks": [{"label": a} for a in attacks],
                }
            },
            "results": [
                {"model": m, "attack": a, "eps": e, "accuracy": acc, "clean_accuracy": 0.9}
                for m, a, e, acc in rows
            ],
            "worst_case": [],
        }
    )


def test_strongest_attack_is_the_lowest_accuracy_first_in_config_order_on_ties() -> None:
    summary = _summary(
        [
            ("m", "fgsm", 0.1, 0.4),
            ("m", "pgd", 0.1, 0.2),
            ("m", "apgd", 0.1, 0.2),
            ("m", "square", 0.1, math.nan),  # undefined: never chosen
        ],
        models=["m"],
        attacks=["fgsm", "apgd", "pgd", "square"],
    )
    assert strongest_attack(summary, "m", 0.1) == "apgd"
    assert strongest_attack(summary, "m", 0.3) is None
    assert headline(summary).rows[0].attack == "apgd"


def test_a_summary_json_null_reads_as_nan() -> None:
    assert math.isnan(num(None)) and math.isnan(num(float("inf"))) and math.isnan(num("x"))
    summary = _summary([("m", "pgd", 0.1, None)], models=["m"])  # type: ignore[list-item]
    assert strongest_attack(summary, "m", 0.1) is None


def test_a_model_keeps_its_colour_by_config_order() -> None:
    summary = _summary([("b", "pgd", 0.1, 0.5)], models=["a", "b", "c"])
    assert model_order(summary) == ["b"]
    palette = Palette(model_order(summary, include_pending=True))
    assert palette.colour("b") == OKABE_ITO[1]  # second in the config, stored or not
    many = Palette([f"m{i}" for i in range(10)])
    assert many.colour("m8") == many.colour("m0") and many.marker("m8") != many.marker("m0")


def test_amplify_fills_the_display_range() -> None:
    clean = np.full((1, 2, 2), 0.5, np.float32)
    adv = clean + np.array([0.1, -0.05, 0.0, 0.025], np.float32).reshape(1, 2, 2)
    shown, factor = amplify(clean, adv)
    assert factor == pytest.approx(5.0, rel=1e-5)
    np.testing.assert_allclose(shown.ravel(), [1.0, 0.25, 0.5, 0.625], atol=1e-5)
    same, zero = amplify(clean, clean)
    assert zero == 0.0 and np.all(same == 0.5)
