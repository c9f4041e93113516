"""Plots for a course lab, drawn from plain tensors: no run, no store, no report.

    from robustbench_local.plotting import plot_accuracy_vs_eps, plot_examples, plot_reliability
    fig = plot_examples(x, x_adv, y, probs_clean, probs_adv)   # clean / perturbation / attacked
    fig = plot_accuracy_vs_eps([0, 0.1, 0.2], {"fgsm": [0.97, 0.52, 0.10]})
    fig = plot_reliability({"before": probs, "after": probs_t}, y)
    fig.savefig("lab.png")      # in a notebook, the returned figure shows as the cell's value

Each function returns a `matplotlib.figure.Figure` built without pyplot, so nothing is shared
with a caller's pyplot session and nothing needs a display (Agg is enough); none calls
`plt.show()`. Inputs live in pixel space, [0, 1], as everywhere in this project; probabilities
are (B, K) or (S, B, K) samples, averaged first, as `uncertainty.metrics` takes them.

`draw_reliability` (one series of a reliability diagram onto given axes) and `amplify` (the
perturbation's display scaling) are the pieces a bigger figure can reuse; they draw what the
report's reliability diagram and example gallery draw from stored results (same bins, marker
areas, percent axes, grey for no change), so the report can share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from uncertainty import metrics

__all__ = [
    "amplify",
    "draw_reliability",
    "plot_accuracy_vs_eps",
    "plot_examples",
    "plot_reliability",
]

# Okabe-Ito colours (colour-blind safe), as the report uses; grey for clean inputs, vermillion
# for a fooled prediction.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
CLEAN = "#8C8C8C"
WRONG = "#D55E00"
# Tolerance on "pixels lie in [0, 1]": a float32 attack clips exactly, rounding cannot exceed it.
_PIXEL_ATOL = 1e-4


# --- checks -----------------------------------------------------------------------------------


def _tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(value))
    raise TypeError(f"{name} must be a torch.Tensor (or a numpy array); got {type(value).__name__}")


def _images(value: Any, name: str) -> Tensor:
    """(B, C, H, W) pixels in [0, 1], C = 1 (grey) or 3 (RGB), as float64."""
    images = _tensor(value, name)
    if not torch.is_floating_point(images):
        raise TypeError(f"{name} must be a floating-point image tensor; got {images.dtype}")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        hint = " (one image? add the batch dim with x[None])" if images.ndim == 3 else ""
        raise ValueError(
            f"{name} must have shape (B, C, H, W) with C = 1 or 3 and B >= 1; got shape "
            f"{tuple(images.shape)}{hint}"
        )
    low, high = float(images.min()), float(images.max())
    if low < -_PIXEL_ATOL or high > 1 + _PIXEL_ATOL:
        raise ValueError(
            f"{name} must hold pixels in [0, 1]; got values in [{low:.3g}, {high:.3g}] "
            "(normalisation belongs inside the model, the inputs stay in pixel space)"
        )
    return images.double().clamp(0.0, 1.0)


def _labels(value: Any, name: str, batch: int, classes: int | None = None) -> Tensor:
    labels = _tensor(value, name)
    if torch.is_floating_point(labels) or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class indices; got {labels.dtype}")
    if labels.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},); got shape {tuple(labels.shape)}")
    if classes is not None and batch and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {classes}); got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.long()


def _mean_probs(value: Any, name: str, batch: int) -> Tensor:
    """(B, K) mean probabilities from (B, K) or (S, B, K), as float64."""
    probs = _tensor(value, name)
    if not torch.is_floating_point(probs):
        raise TypeError(
            f"{name} must be a floating-point tensor of probabilities; got {probs.dtype}"
        )
    if probs.ndim not in (2, 3) or probs.shape[-2] != batch:
        raise ValueError(
            f"{name} must have shape ({batch}, K) or (S, {batch}, K) to match the images; got "
            f"shape {tuple(probs.shape)}"
        )
    probs = probs.double()
    mean = probs.mean(dim=0) if probs.ndim == 3 else probs
    if float(probs.min()) < -1e-3 or ((mean.sum(dim=-1) - 1).abs() > 1e-3).any():
        raise ValueError(
            f"{name} must be probabilities (rows in [0, 1] summing to 1); got values in "
            f"[{float(probs.min()):.3g}, {float(probs.max()):.3g}] (logits? pass "
            "logits.softmax(dim=-1), or uncertainty.sample_probs(model, x))"
        )
    return mean


# --- shared pieces ----------------------------------------------------------------------------


def amplify(delta: Any) -> tuple[np.ndarray, float]:
    """Scale a perturbation into the display range so that it can be seen.

    The largest |delta| entry reaches the edge of [0, 1] and zero maps to 0.5 (grey): an eps of
    0.1 is 10 % of the range and would be nearly invisible drawn as it is. One factor for the
    whole array, so the images drawn from it compare in size.

    Args:
        delta: (...) perturbation x_adv - x, a tensor or array.

    Returns:
        (the scaled array in [0, 1], the factor); factor 0 when delta is all zeros.
    """
    values = _tensor(delta, "delta").double().numpy()
    largest = float(np.abs(values).max()) if values.size else 0.0
    if largest == 0.0:
        return np.full(values.shape, 0.5), 0.0
    factor = 0.5 / largest
    return np.clip(0.5 + factor * values, 0.0, 1.0), factor


def draw_reliability(
    diagram: Axes,
    histogram: Axes,
    confidence: Any,
    correct: Any,
    *,
    bins: int = 15,
    colour: str = CLEAN,
    marker: str = "o",
) -> metrics.ReliabilityBins:
    """Draw one prediction's reliability curve and confidence histogram onto two axes.

    Accuracy in each equal-width confidence bin against the bin's mean confidence (on the
    diagonal = calibrated), marker area growing with the bin's share of inputs (a bin of one
    input can swing from 0 to 100 % and should not look as solid as a bin of hundreds); below,
    the share of inputs per confidence bin. Both in percent.

    Args:
        diagram: the axes of the reliability curve.
        histogram: the axes of the confidence histogram.
        confidence: (N,) top-label confidences in [0, 1].
        correct: (N,) bool, whether the top label was right.
        bins: number of equal-width bins.
        colour, marker: the series' look (the caller draws the legend: marker areas here
            encode bin shares, so a legend made from them would too).

    Returns:
        The ReliabilityBins drawn (its `.ece` is the expected calibration error).
    """
    confidence = _tensor(confidence, "confidence")
    found = metrics.reliability_bins(confidence, _tensor(correct, "correct"), bins)
    confidence_values = confidence.double().numpy()
    count = found.count.numpy()
    filled = count > 0
    share = count[filled] / max(len(confidence_values), 1)
    x = 100 * found.mean_confidence.numpy()[filled]
    y = 100 * found.accuracy.numpy()[filled]
    diagram.plot(x, y, color=colour, linewidth=1, alpha=0.7)
    diagram.scatter(x, y, s=6 + 150 * share, color=colour, marker=marker, zorder=3)
    weights = np.full(len(confidence_values), 100.0 / max(len(confidence_values), 1))
    histogram.hist(
        100 * confidence_values,
        bins=100 * found.edges.numpy(),
        weights=weights,
        color=colour,
        alpha=0.55,
        histtype="stepfilled",
    )
    return found


def _reliability_frame(diagram: Axes, histogram: Axes) -> None:
    """Diagonal, limits and labels of a reliability diagram over a confidence histogram."""
    diagram.plot([0, 100], [0, 100], color="black", linewidth=1, linestyle=":")
    diagram.set_xlim(0, 100)
    diagram.set_ylim(-3, 103)
    diagram.set_ylabel("accuracy in bin (%)")
    histogram.set_xlabel("confidence (top-class probability, %)")
    histogram.set_ylabel("inputs (%)")


def _style(ax: Axes) -> None:
    ax.grid(True, alpha=0.3)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


# --- figures ----------------------------------------------------------------------------------


def plot_examples(
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    probs_clean: Tensor,
    probs_adv: Tensor,
    *,
    n: int = 8,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Clean images, their perturbations and the attacked images, with the model's verdicts.

    Row 1: the clean images, titled "label -> prediction (confidence)". Row 2: the
    perturbation x_adv - x, amplified so the largest entry among the images shown reaches
    black or white, grey being no change (see `amplify`; the factor is in the row's label),
    titled with its largest entry max |delta|. Row 3: the attacked images with their
    prediction and confidence. A prediction that is wrong is drawn in vermillion.

    Args:
        x: (B, C, H, W) clean images in [0, 1], C = 1 or 3.
        x_adv: (B, C, H, W) attacked images in [0, 1].
        y: (B,) true labels.
        probs_clean: (B, K) probabilities on x, or (S, B, K) samples (averaged).
        probs_adv: (B, K) or (S, B, K) probabilities on x_adv.
        n: how many of the first images to show (at most B).
        class_names: K names to print instead of class indices.

    Returns:
        The figure: 3 rows of min(n, B) image axes.
    """
    x = _images(x, "x")
    x_adv = _images(x_adv, "x_adv")
    if x_adv.shape != x.shape:
        raise ValueError(
            f"x_adv must have the shape of x, {tuple(x.shape)}; got {tuple(x_adv.shape)}"
        )
    batch = x.shape[0]
    clean = _mean_probs(probs_clean, "probs_clean", batch)
    adv = _mean_probs(probs_adv, "probs_adv", batch)
    classes = clean.shape[-1]
    if adv.shape[-1] != classes:
        raise ValueError(
            f"probs_adv must have K = {classes} classes as probs_clean; got {adv.shape[-1]}"
        )
    y = _labels(y, "y", batch, classes)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1; got {n!r}")
    if class_names is not None and len(class_names) != classes:
        raise ValueError(f"class_names must hold K = {classes} names; got {len(class_names)}")
    shown = min(n, batch)

    def name(k: int) -> str:
        return str(class_names[k]) if class_names is not None else str(k)

    delta = (x_adv - x)[:shown]
    scaled, factor = amplify(delta)
    fig = Figure(figsize=(1.45 * shown + 0.9, 5.2), layout="constrained")
    axes = np.atleast_2d(fig.subplots(3, shown, squeeze=False))
    for i in range(shown):
        label = int(y[i])
        for row, probs in ((0, clean), (2, adv)):
            confidence, prediction = probs[i].max(dim=-1)
            ax = axes[row, i]
            _image(ax, (x if row == 0 else x_adv)[i].numpy())
            prefix = f"{name(label)}\u2192" if row == 0 else ""
            ax.set_title(
                f"{prefix}{name(int(prediction))} ({float(confidence):.0%})",
                fontsize=8.5,
                color=WRONG if int(prediction) != label else "black",
            )
        ax = axes[1, i]
        _image(ax, scaled[i])
        ax.set_title(f"max |\u03b4| {float(delta[i].abs().max()):.3g}", fontsize=8)
    axes[0, 0].set_ylabel("clean\nlabel\u2192pred", fontsize=8.5)
    amplified = f"\u00d7{factor:.3g}" if factor else "(none)"
    axes[1, 0].set_ylabel(f"perturbation\n{amplified}, grey = 0", fontsize=8.5)
    axes[2, 0].set_ylabel("attacked\npred", fontsize=8.5)
    fig.suptitle("clean / perturbation / attacked (vermillion = wrong prediction)", fontsize=10)
    return fig


def _image(ax: Axes, image: np.ndarray) -> None:
    """(C, H, W) in [0, 1] without ticks: grey for one channel, RGB for three."""
    if image.shape[0] == 3:
        ax.imshow(np.transpose(image, (1, 2, 0)), interpolation="nearest")
    else:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_accuracy_vs_eps(
    eps: Sequence[float] | Tensor,
    accuracies: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "eps",
    title: str | None = None,
) -> Figure:
    """Accuracy against the attack's eps, one line per series (an attack or a model).

    Args:
        eps: (E,) non-negative radii, in the order of the accuracies; include 0 for the
            clean accuracy.
        accuracies: series name -> (E,) accuracies as fractions in [0, 1] (as
            `attacks.robust_accuracy` gives them), drawn in percent.
        xlabel: the x axis label (e.g. "eps (linf)").
        title: an optional axes title.

    Returns:
        The figure: one axes, one line per series.
    """
    eps_values = _tensor(eps, "eps").double().numpy()
    if eps_values.ndim != 1 or len(eps_values) == 0:
        raise ValueError(f"eps must be a non-empty 1-d sequence; got shape {eps_values.shape}")
    if not np.isfinite(eps_values).all() or (eps_values < 0).any():
        raise ValueError(f"eps must hold finite values >= 0; got {eps_values.tolist()}")
    if not isinstance(accuracies, Mapping) or not accuracies:
        raise TypeError(
            "accuracies must be a non-empty dict of name -> accuracies per eps; got "
            f"{accuracies!r:.80}"
        )
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for index, (series, values) in enumerate(accuracies.items()):
        accuracy = _tensor(values, f"accuracies[{series!r}]").double().numpy()
        if accuracy.shape != eps_values.shape:
            raise ValueError(
                f"accuracies[{series!r}] must hold one value per eps ({len(eps_values)}); got "
                f"shape {accuracy.shape}"
            )
        if not ((accuracy >= 0) & (accuracy <= 1)).all():
            raise ValueError(
                f"accuracies[{series!r}] must be fractions in [0, 1]; got {accuracy.tolist()} "
                "(percentages? divide by 100)"
            )
        ax.plot(
            eps_values,
            100 * accuracy,
            color=COLOURS[index % len(COLOURS)],
            marker=MARKERS[index % len(MARKERS)],
            label=str(series),
        )
    ax.set_ylim(-3, 103)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    _style(ax)
    ax.legend(frameon=False, loc="best")
    return fig


def plot_reliability(
    probs: Tensor | Mapping[str, Tensor],
    y: Tensor,
    *,
    bins: int = 15,
    title: str | None = None,
) -> Figure:
    """Reliability diagram over a confidence histogram, with each prediction's ECE.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first), or a dict of
            name -> such tensors to compare on one diagram (e.g. before and after temperature
            scaling, or clean and attacked inputs with the same labels).
        y: (B,) true labels.
        bins: number of equal-width confidence bins (15, as the report and `metrics.ece`).
        title: the diagram's title; None names the number of bins.

    Returns:
        The figure: the diagram on top, the histogram below (two axes sharing x); the
        legend gives each series' ECE, the same number as `metrics.ece(probs, y, bins)`.
    """
    series = dict(probs) if isinstance(probs, Mapping) else {"model": probs}
    if not series:
        raise ValueError("probs must not be an empty dict")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an int >= 1; got {bins!r}")
    fig = Figure(figsize=(4.6, 5.4 + 0.18 * len(series)), layout="constrained")
    diagram, histogram = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    handles = []
    for index, (name, value) in enumerate(series.items()):
        argument = f"probs[{name!r}]" if isinstance(probs, Mapping) else "probs"
        tensor = _tensor(value, argument)
        batch = tensor.shape[-2] if tensor.ndim in (2, 3) else -1
        mean = _mean_probs(tensor, argument, batch)
        labels = _labels(y, "y", batch, mean.shape[-1])
        confidence, prediction = mean.max(dim=-1)
        colour = CLEAN if len(series) == 1 else COLOURS[index % len(COLOURS)]
        marker = MARKERS[index % len(MARKERS)]
        found = draw_reliability(
            diagram,
            histogram,
            confidence,
            prediction == labels,
            bins=bins,
            colour=colour,
            marker=marker,
        )
        # Legend markers of one size: in the diagram, marker area encodes a bin's share.
        handles.append(
            Line2D([], [], color=colour, marker=marker, ms=5, label=f"{name}: ECE {found.ece:.3f}")
        )
    _reliability_frame(diagram, histogram)
    for ax in (diagram, histogram):
        _style(ax)
    handles.append(Line2D([], [], color="black", linestyle=":", label="calibrated"))
    # Below the axes: inside, any corner can hold data (noisy sparse bins, attacked inputs).
    fig.legend(handles=handles, frameon=False, loc="outside lower center", fontsize=8)
    diagram.set_title(title or f"reliability diagram ({bins} equal-width bins)", fontsize=10)
    return fig
