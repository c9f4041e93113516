"""Attribution maps: which pixels the model's score for a class depends on.

Three captum methods, one output: a non-negative (B, H, W) map per image, so maps of any
method, model and input can be compared by rank (`attribution_similarity`).

- ``saliency`` (Simonyan et al. 2014): |d score / d pixel|, the largest over the channels.
- ``integrated_gradients`` (Sundararajan et al. 2017): the path integral of the gradient from
  a baseline (zeros: a black image) to x, times (x - baseline); summed over the channels, then
  its absolute value taken.
- ``gradcam`` (Selvaraju et al. 2017): a convolutional layer's activations weighted by the
  spatial mean of their gradients, ReLU'd and upsampled to the input size.

The score is the model's output for the target class: a logit for a plain model, the log of
the predictive mean probability for `uncertainty.DeepEnsemble` and `uncertainty.MCDropout`
(whose forward returns it), so a wrapper's map explains its predictive mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from torch import Tensor, nn

from attacks.descent import eval_mode
from robustbench_local.explain._checks import (
    check_count,
    check_images,
    check_model,
    check_target,
)
from robustbench_local.explain._models import Forward, gradcam_layers, holds


class Method(str, Enum):
    """The attribution methods of `attribution_maps`."""

    SALIENCY = "saliency"
    INTEGRATED_GRADIENTS = "integrated_gradients"
    GRADCAM = "gradcam"


_INTERPOLATE_MODES = ("bilinear", "nearest", "bicubic", "area")

#: The options each method takes (besides ``layer``, GradCAM's only).
_OPTIONS: dict[Method, dict[str, object]] = {
    Method.SALIENCY: {"seed": 0},
    Method.INTEGRATED_GRADIENTS: {
        "seed": 0,
        "n_steps": 50,
        "baseline": None,
        "internal_batch_size": None,
    },
    Method.GRADCAM: {"seed": 0, "interpolate_mode": "bilinear"},
}


def _parse_method(method: object) -> Method:
    try:
        return Method(method)
    except ValueError:
        accepted = ", ".join(repr(m.value) for m in Method)
        raise ValueError(f"method must be one of {accepted}; got {method!r}") from None


def _resolve_options(method: Method, options: dict[str, object]) -> dict[str, object]:
    """The method's defaults updated with `options`, each checked."""
    allowed = _OPTIONS[method]
    unknown = [name for name in options if name not in allowed]
    if unknown:
        raise TypeError(
            f"method={method.value!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(sorted(allowed))}"
        )
    resolved = {**allowed, **options}
    check_count("seed", resolved["seed"], minimum=0)
    if method is Method.INTEGRATED_GRADIENTS:
        check_count("n_steps", resolved["n_steps"])
        if resolved["internal_batch_size"] is not None:
            check_count("internal_batch_size", resolved["internal_batch_size"])
    if method is Method.GRADCAM and resolved["interpolate_mode"] not in _INTERPOLATE_MODES:
        accepted = ", ".join(repr(mode) for mode in _INTERPOLATE_MODES)
        raise ValueError(
            f"interpolate_mode must be one of {accepted}; got {resolved['interpolate_mode']!r}"
        )
    return resolved


def _check_baseline(baseline: object, x: Tensor) -> Tensor:
    """None (zeros), a number, or a tensor that broadcasts to x's shape, as x's dtype."""
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if not isinstance(baseline, Tensor):
        raise TypeError(
            f"baseline must be None, a number or a tensor broadcastable to x's shape "
            f"{tuple(x.shape)}; got {type(baseline).__name__}"
        )
    try:
        expanded = baseline.to(device=x.device, dtype=x.dtype).expand_as(x)
    except RuntimeError:
        raise ValueError(
            f"baseline must broadcast to x's shape {tuple(x.shape)}; got {tuple(baseline.shape)}"
        ) from None
    return expanded.contiguous()


def _no_layer(layer: object, method: Method) -> None:
    if layer is not None:
        raise ValueError(
            f"layer is used by method='gradcam' only; got layer={type(layer).__name__} with "
            f"method={method.value!r}"
        )


@contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode (every module's flag restored after) with gradients on, whatever the caller's
    grad mode: an evaluation loop may call us under no_grad or inference mode. Tensors that
    enter autograd must be made inside it (an inference tensor cannot be saved for backward)."""
    with torch.inference_mode(False), torch.enable_grad(), eval_mode(model):
        yield


def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    *,
    baseline: float | Tensor | None = None,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Signed integrated-gradients attributions and captum's convergence delta.

    Completeness: ``attributions[b].sum() = f_b(x) - f_b(baseline) + delta[b]``, with
    f_b the model's output for ``target[b]``; |delta| shrinks as ``n_steps`` grows (captum
    integrates with Gauss-Legendre points). Run in float64 to see it near machine precision.

    Args:
        model: returns logits (B, K), or an `uncertainty` wrapper (its log predictive mean).
        x: (B, C, H, W) floating inputs.
        target: (B,) integer class indices in [0, K).
        baseline: the path's start: None (zeros), a number, or a tensor broadcastable to x.
        n_steps: integration points.
        internal_batch_size: rows per forward pass (captum's option; None: all n_steps x B).
        seed: fixes the MC dropout masks (see `attribution_maps`).

    Returns:
        (attributions (B, C, H, W) signed, x's dtype; delta (B,)), both detached.
    """
    model = check_model(model)
    x = check_images(x)
    target = check_target(target, x)
    options = _resolve_options(
        Method.INTEGRATED_GRADIENTS,
        {
            "baseline": baseline,
            "n_steps": n_steps,
            "internal_batch_size": internal_batch_size,
            "seed": seed,
        },
    )
    return _integrated_gradients(model, x, target, options)


def _integrated_gradients(
    model: nn.Module, x: Tensor, target: Tensor, options: dict[str, object]
) -> tuple[Tensor, Tensor]:
    with _explaining(model):
        start = _check_baseline(options["baseline"], x.detach().clone())
        target = target.clone()
        forward = Forward(model, target, options["seed"], loop_members=False)  # type: ignore[arg-type]
        attributions, delta = IntegratedGradients(forward).attribute(
            x.detach().clone(),
            baselines=start,
            target=target,
            n_steps=options["n_steps"],  # type: ignore[arg-type]
            internal_batch_size=options["internal_batch_size"],  # type: ignore[arg-type]
            return_convergence_delta=True,
        )
    return attributions.detach(), delta.detach()


def attribution_maps(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    *,
    method: str | Method = "saliency",
    layer: nn.Module | None = None,
    **options: object,
) -> Tensor:
    """Non-negative attribution per pixel for the class `target`, one map per image.

    The model runs in eval mode (each module's training flag is restored after); only input
    gradients are taken (`torch.autograd.grad` inside captum), so no parameter gets a
    ``.grad`` and no ``requires_grad`` flag changes.

    Channels: saliency takes the largest |gradient| over the channels (Simonyan et al.: a
    pixel is as salient as its most sensitive channel; a sum would favour pixels whose
    channels happen to agree). Integrated gradients sums the signed channel attributions
    first and then takes |.|: the sum keeps completeness per pixel (the signed pixel values
    still add up to f(x) - f(baseline)), the absolute value keeps a pixel that lowers the
    score as important as one that raises it. GradCAM has one channel already.

    Uncertainty wrappers: the score is the wrapper's output, the log predictive mean. An
    `uncertainty.MCDropout` (also as an ensemble member) is explained with fixed masks: a
    fresh wrapper over the same network, seeded with ``seed``, for every B-row forward pass,
    so the map is deterministic, every integration point sees the same network, and the
    clean and adversarial batches of one size see the same masks, so that their maps differ
    only by the input. The wrapper passed in is not called (its seed source does not move).
    This holds for an MCDropout at the top or as an ensemble member; one nested in another
    module (an autocast wrapper, say) runs as it is, with fresh masks on every call.
    GradCAM of a wrapper sums the ReLU'd maps of every ensemble member's (default: last)
    conv layer and of every dropout sample. The gradient of log mean_m p_m reaches member m
    as w_m times that of log p_m, with w_m = p_m / (M mean p) >= 0 and sum_m w_m = 1, so the
    sum is exactly the mean of the members' own GradCAM maps (of their log-softmax scores)
    weighted by each one's share of the predictive probability of the target.

    Args:
        model: returns logits (B, K); or `uncertainty.DeepEnsemble` / `MCDropout`.
        x: (B, C, H, W) floating inputs (pixel space).
        target: (B,) integer class indices in [0, K): whose score to explain (e.g. y).
        method: "saliency", "integrated_gradients" or "gradcam".
        layer: GradCAM's layer, whose output is (B, C', h, w). None: the last nn.Conv2d in
            `model.modules()` order (per member for an ensemble).
        options: ``seed`` (int, default 0: the MC dropout masks; any method);
            integrated_gradients: ``n_steps`` (50), ``baseline`` (None = zeros, a number or a
            tensor broadcastable to x), ``internal_batch_size`` (None); gradcam:
            ``interpolate_mode`` ("bilinear", default; "nearest", "bicubic", "area"). The map
            is clamped at 0 after upsampling, since bicubic can overshoot.

    Returns:
        (B, H, W) non-negative maps in x's dtype, on x's device, detached.

    Raises:
        TypeError, ValueError: a bad argument (named in the message), a model whose output
            is not (B, K) or for which a target is out of range, or gradcam on a model with
            no nn.Conv2d and no layer given.
    """
    model = check_model(model)
    method = _parse_method(method)
    x = check_images(x)
    target = check_target(target, x)
    resolved = _resolve_options(method, options)
    seed = int(resolved["seed"])  # type: ignore[call-overload]
    if method is Method.SALIENCY:
        _no_layer(layer, method)
        with _explaining(model):
            target = target.clone()
            forward = Forward(model, target, seed, loop_members=False)
            inputs = x.detach().clone().requires_grad_()
            gradients = Saliency(forward).attribute(inputs, target=target, abs=True)
        return gradients.detach().amax(dim=1)
    if method is Method.INTEGRATED_GRADIENTS:
        _no_layer(layer, method)
        attributions, _ = _integrated_gradients(model, x, target, resolved)
        return attributions.sum(dim=1).abs()
    return _gradcam(model, x, target, layer, seed, str(resolved["interpolate_mode"]))


def _gradcam(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    layer: nn.Module | None,
    seed: int,
    interpolate_mode: str,
) -> Tensor:
    if layer is not None and not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module or None; got {type(layer).__name__}")
    if layer is not None and not holds(model, layer):
        # Its hook would never fire; captum would fail with an unrelated message.
        raise ValueError(
            f"layer must be a submodule of the model; got {type(layer).__name__}, which "
            f"{type(model).__name__} does not contain"
        )
    layers = gradcam_layers(model) if layer is None else [layer]
    batch, height, width = x.shape[0], x.shape[2], x.shape[3]
    total = torch.zeros(batch, height, width, dtype=x.dtype, device=x.device)
    with _explaining(model):
        target = target.clone()
        for hooked in layers:
            # Members run one by one (no vmap), so the hook sees this member's activations.
            forward = Forward(model, target, seed, loop_members=True)
            cam = LayerGradCam(forward, hooked).attribute(
                x.detach().clone().requires_grad_(), target=target, relu_attributions=True
            )
            cam = _per_input(cam.detach(), batch, hooked)
            upsampled = LayerAttribution.interpolate(cam, (height, width), interpolate_mode)
            total += upsampled[:, 0].to(x.dtype).clamp_min(0.0)
    return total


def _per_input(cam: Tensor, batch: int, layer: nn.Module) -> Tensor:
    """(B, 1, h, w) from a layer's (S x B, 1, h, w) map: summed over MC dropout samples,
    whose T forward rows come sample-major (rows s*B .. s*B + B - 1 are sample s)."""
    if cam.dim() != 4:
        raise ValueError(
            f"layer {type(layer).__name__} must output (B, C, h, w) feature maps for GradCAM; "
            f"its map has shape {tuple(cam.shape)}"
        )
    rows = cam.shape[0]
    if rows == batch:
        return cam
    if rows % batch:
        raise ValueError(
            f"layer {type(layer).__name__} ran on {rows} rows, not a multiple of the batch "
            f"{batch}; pick a layer that sees one row per input (or per dropout sample)"
        )
    return cam.reshape(rows // batch, batch, *cam.shape[1:]).sum(dim=0)
