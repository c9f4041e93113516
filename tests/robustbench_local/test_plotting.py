"""Plot helpers on plain tensors: what each figure holds, and the errors for misuse."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from robustbench_local import plotting
from robustbench_local.plotting import (
    amplify,
    plot_accuracy_vs_eps,
    plot_examples,
    plot_reliability,
)
from uncertainty import metrics

B, K = 6, 10


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(B, 1, 8, 8, generator=generator)
    delta = (torch.rand(B, 1, 8, 8, generator=generator) - 0.5) * 0.2
    x_adv = (x + delta).clamp(0, 1)
    y = torch.arange(B) % K
    probs_clean = torch.nn.functional.one_hot(y, K).float() * 0.9 + 0.01
    logits_adv = torch.randn(B, K, generator=generator) * 3
    return {
        "x": x,
        "x_adv": x_adv,
        "y": y,
        "probs_clean": probs_clean,
        "probs_adv": logits_adv.softmax(-1),
    }


def _saves(fig: Figure) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


# --- plot_examples ----------------------------------------------------------------------------


def test_examples_are_three_rows_of_images_with_verdicts(batch) -> None:
    fig = plot_examples(**batch, n=4)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 3 * 4
    assert all(len(ax.get_images()) == 1 for ax in axes)
    rows = [axes[i * 4 : (i + 1) * 4] for i in range(3)]
    # Clean row: label -> prediction (confidence); here every clean prediction is right.
    assert rows[0][1].get_title() == "1\u21921 (91%)"
    assert rows[0][1].title.get_color() == "black"
    # Perturbation row: amplified around grey, titled with its largest entry.
    shown = rows[1][0].get_images()[0].get_array()
    delta = (batch["x_adv"] - batch["x"])[:4]
    expected, factor = amplify(delta)
    np.testing.assert_allclose(np.asarray(shown), expected[0, 0])
    assert f"\u00d7{factor:.3g}" in rows[1][0].get_ylabel()
    assert rows[1][0].get_title() == f"max |\u03b4| {float(delta[0].abs().max()):.3g}"
    # Attacked row: a wrong prediction is drawn in vermillion.
    prediction = batch["probs_adv"].argmax(-1)
    for i, ax in enumerate(rows[2]):
        wrong = int(prediction[i]) != int(batch["y"][i])
        assert ax.title.get_color() == (plotting.WRONG if wrong else "black")
    _saves(fig)


def test_examples_take_samples_class_names_and_rgb(batch) -> None:
    names = [f"c{k}" for k in range(K)]
    samples = batch["probs_adv"][None].repeat(3, 1, 1)  # (S, B, K): averaged
    rgb = {**batch, "x": batch["x"].repeat(1, 3, 1, 1), "x_adv": batch["x_adv"].repeat(1, 3, 1, 1)}
    fig = plot_examples(**{**rgb, "probs_adv": samples}, n=20, class_names=names)
    assert len(fig.axes) == 3 * B  # n larger than B shows all B
    assert fig.axes[0].get_title().startswith("c0\u2192c0")
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8, 3)


def test_an_unchanged_image_has_a_grey_perturbation() -> None:
    scaled, factor = amplify(torch.zeros(2, 1, 4, 4))
    assert factor == 0.0
    assert np.all(scaled == 0.5)
    scaled, factor = amplify(torch.tensor([0.1, -0.05, 0.0]))
    assert factor == pytest.approx(5.0)
    np.testing.assert_allclose(scaled, [1.0, 0.25, 0.5])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x": torch.rand(1, 8, 8)}, ValueError, r"x must have shape \(B, C, H, W\).*x\[None\]"),
        ({"x": torch.rand(B, 2, 8, 8)}, ValueError, "C = 1 or 3"),
        ({"x_adv": torch.rand(B, 1, 8, 8) * 2}, ValueError, "x_adv must hold pixels in"),
        ({"x_adv": torch.rand(B, 1, 4, 4)}, ValueError, "x_adv must have the shape of x"),
        ({"x": np.zeros((B, 1, 8, 8), dtype=np.uint8)}, TypeError, "floating-point image"),
        ({"probs_adv": torch.randn(B, K)}, ValueError, r"probs_adv must be probabilities.*soft"),
        ({"probs_clean": torch.rand(B + 1, K)}, ValueError, r"probs_clean must have shape"),
        ({"y": torch.full((B,), K)}, ValueError, r"y must hold class indices in \[0, 10\)"),
        ({"y": torch.zeros(B)}, TypeError, "y must be an integer tensor"),
        ({"n": 0}, ValueError, "n must be an int >= 1"),
        ({"class_names": ["a"]}, ValueError, "class_names must hold K = 10 names; got 1"),
        ({"x": "images"}, TypeError, "x must be a torch.Tensor"),
    ],
)
def test_examples_reject_misuse_naming_the_argument(batch, change, error, match) -> None:
    with pytest.raises(error, match=match):
        plot_examples(**{**batch, **change})


def test_tensors_that_require_grad_are_plotted(batch) -> None:
    x = batch["x"].clone().requires_grad_(True)
    probs = batch["probs_clean"].clone().requires_grad_(True)
    plot_examples(**{**batch, "x": x, "probs_clean": probs}, n=2)


# --- plot_accuracy_vs_eps ---------------------------------------------------------------------


def test_accuracy_vs_eps_draws_one_line_per_series_in_percent() -> None:
    eps = [0.0, 0.05, 0.1]
    fig = plot_accuracy_vs_eps(
        eps, {"fgsm": [0.98, 0.8, 0.5], "pgd": torch.tensor([0.98, 0.7, 0.3])}
    )
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["fgsm", "pgd"]
    np.testing.assert_allclose(lines[1].get_xdata(), eps)
    np.testing.assert_allclose(lines[1].get_ydata(), [98.0, 70.0, 30.0])
    assert ax.get_ylabel() == "accuracy (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fgsm", "pgd"]
    _saves(fig)


@pytest.mark.parametrize(
    ("eps", "accuracies", "error", "match"),
    [
        ([], {"a": []}, ValueError, "eps must be a non-empty 1-d sequence"),
        ([0.1, -0.1], {"a": [1, 1]}, ValueError, "eps must hold finite values >= 0"),
        ([0.0, 0.1], {}, TypeError, "accuracies must be a non-empty dict"),
        ([0.0, 0.1], [0.9, 0.5], TypeError, "accuracies must be a non-empty dict"),
        ([0.0, 0.1], {"a": [0.9]}, ValueError, r"accuracies\['a'\] must hold one value per eps"),
        ([0.0, 0.1], {"a": [98.0, 50.0]}, ValueError, "fractions in .*percentages"),
    ],
)
def test_accuracy_vs_eps_rejects_misuse(eps, accuracies, error, match) -> None:
    with pytest.raises(error, match=match):
        plot_accuracy_vs_eps(eps, accuracies)


# --- plot_reliability -------------------------------------------------------------------------


def _calibration_data(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, K, generator=generator) * 2).softmax(-1)
    y = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return probs, y


def test_reliability_draws_a_diagram_and_a_histogram_with_the_ece() -> None:
    probs, y = _calibration_data()
    fig = plot_reliability(probs, y, bins=10)
    diagram, histogram = fig.axes
    assert diagram.get_ylabel() == "accuracy in bin (%)"
    assert histogram.get_xlabel().startswith("confidence")
    # The points are the reliability bins' (percent), their areas growing with the bin's share.
    found = metrics.reliability_bins(*metrics.confidence_and_correct(probs, y), 10)
    filled = found.count > 0
    (points,) = [c for c in diagram.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(
        points.get_offsets(),
        np.stack([100 * found.mean_confidence[filled], 100 * found.accuracy[filled]], axis=1),
    )
    assert len(set(points.get_sizes())) > 1
    # The histogram's bars hold the share of inputs per bin, in percent: they sum to 100.
    (bars,) = histogram.patches
    assert bars.get_path().vertices[:, 1].max() <= 100
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [f"model: ECE {metrics.ece(probs, y, 10):.3f}", "calibrated"]
    _saves(fig)


def test_reliability_compares_named_predictions_and_samples() -> None:
    probs, y = _calibration_data()
    samples = torch.stack([probs, probs.roll(1, dims=-1)])  # (S, B, K)
    fig = plot_reliability({"one": probs, "two": samples}, y, title="compare")
    diagram = fig.axes[0]
    assert diagram.get_title() == "compare"
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[:2] == [
        f"one: ECE {metrics.ece(probs, y):.3f}",
        f"two: ECE {metrics.ece(samples, y):.3f}",
    ]
    assert len([c for c in diagram.collections if isinstance(c, PathCollection)]) == 2


@pytest.mark.parametrize(
    ("probs", "kwargs", "error", "match"),
    [
        (torch.randn(20, K), {}, ValueError, r"probs must be probabilities.*logits\.softmax"),
        ({"a": torch.randn(20, K)}, {}, ValueError, r"probs\['a'\] must be probabilities"),
        ({}, {}, ValueError, "probs must not be an empty dict"),
        (torch.rand(20), {}, ValueError, r"probs must have shape"),
        (None, {"bins": 0}, ValueError, "bins must be an int >= 1"),
    ],
)
def test_reliability_rejects_misuse(probs, kwargs, error, match) -> None:
    if probs is None:
        probs = _calibration_data(20)[0]
    with pytest.raises(error, match=match):
        plot_reliability(probs, torch.zeros(20, dtype=torch.long), **kwargs)


def test_reliability_rejects_labels_of_another_batch() -> None:
    probs, y = _calibration_data(20)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\)"):
        plot_reliability(probs, y[:5])


# --- the module's promises --------------------------------------------------------------------


def test_no_pyplot_state_is_touched(batch) -> None:
    before = plt.get_fignums()
    plot_examples(**batch, n=2)
    plot_accuracy_vs_eps([0.0, 0.1], {"a": [1.0, 0.5]})
    plot_reliability(*_calibration_data(50))
    assert plt.get_fignums() == before


def test_imports_stay_on_the_right_side_of_the_arrows() -> None:
    source = Path(plotting.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    banned = ("reports", "robustbench_local.", "attacks", "matplotlib.pyplot")
    assert not [m for m in imported if m.startswith(banned) or m == "robustbench_local"]
    assert "show" not in {
        n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)
    }
