"""What the explain functions run: a deterministic forward for the uncertainty wrappers, and
the layers they hook.

MC dropout draws new masks on every call, and for row b of a batch its mask depends on b and
the batch size (see `uncertainty.MCDropout`). An attribution method that calls the model more
than once, or on a bigger batch (integrated gradients runs all its path points in one), would
then differentiate a different network at every point. `FixedMasks` instead builds, for every
B-row chunk it is called on, a fresh `MCDropout` over the same network with a private seed
source seeded with `seed`: every chunk, every call, and the clean and the adversarial batch of
the same size see the same T masks per row. The wrapper the user passed is never called, so
its own seed source does not advance.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustbench_local.explain._checks import check_output
from uncertainty import DeepEnsemble, MCDropout


def has_mc_dropout(model: nn.Module) -> bool:
    """Whether an `MCDropout` wrapper sits anywhere in the model (an ensemble member, say)."""
    return any(isinstance(module, MCDropout) for module in model.modules())


def fixed_copy(model: nn.Module, seed: int, batch: int, *, loop_members: bool) -> nn.Module:
    """A wrapper tree over the same networks whose MC dropout masks depend only on `seed`.

    Args:
        model: the model to explain.
        seed: seeds every MCDropout's sample seeds.
        batch: rows per call; each MCDropout runs its T samples in one forward pass of
            T x batch rows, so a hooked layer runs exactly once per call (GradCAM needs that).
        loop_members: run ensemble members one by one, never through vmap, so that hooks on
            a member's layer see that member's activations (GradCAM).

    Returns:
        A module sharing every parameter with `model` (nothing is copied). Only the top
        module and ensemble members are rebuilt: an MCDropout inside any other module is
        left as it is.
    """
    if isinstance(model, MCDropout):
        return MCDropout(
            fixed_copy(model.model, seed, batch, loop_members=loop_members),
            samples=model.samples,
            generator=seed,
            max_batch=model.samples * batch,
        )
    if isinstance(model, DeepEnsemble):
        members = [fixed_copy(m, seed, batch, loop_members=loop_members) for m in model.members]
        return DeepEnsemble(members, vectorize="never" if loop_members else model.vectorize)
    return model


class Forward:
    """The function captum differentiates: the model's logits, checked on the first call.

    For a model with MC dropout, the input is cut into chunks of `batch` rows (captum's
    integrated gradients stacks its path points along the batch) and each chunk runs through a
    fresh `fixed_copy`, so every path point of row b sees row b's masks.

    Args:
        model: the model to explain.
        target: (B,) int64 class indices, to check against the model's K.
        seed: the MC dropout seed (ignored for a model without MC dropout).
        loop_members: see `fixed_copy`.
    """

    def __init__(self, model: nn.Module, target: Tensor, seed: int, *, loop_members: bool) -> None:
        self.model = model
        self.target = target
        self.batch = target.shape[0]
        self.seed = seed
        self.loop_members = loop_members
        self.stochastic = has_mc_dropout(model)
        self.checked = False

    def _run(self, inputs: Tensor) -> Tensor:
        if not self.stochastic:
            if self.loop_members and isinstance(self.model, DeepEnsemble):
                return fixed_copy(self.model, self.seed, self.batch, loop_members=True)(inputs)
            return self.model(inputs)
        rows = inputs.shape[0]
        size = self.batch if rows % self.batch == 0 else rows
        outputs = [
            fixed_copy(self.model, self.seed, chunk.shape[0], loop_members=self.loop_members)(chunk)
            for chunk in inputs.split(size)
        ]
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]

    def __call__(self, inputs: Tensor) -> Tensor:
        output = self._run(inputs)
        if not self.checked:
            # Checked before captum indexes the output with target, so a bad target is a
            # ValueError that names it, not an IndexError from inside captum.
            check_output(output, inputs.shape[0], self.target)
            self.checked = True
        return output


def last_module(model: nn.Module, kind: type[nn.Module]) -> nn.Module | None:
    """The last module of `kind` in registration order (`model.modules()`), or None."""
    found = None
    for module in model.modules():
        if isinstance(module, kind):
            found = module
    return found


def gradcam_layers(model: nn.Module) -> list[nn.Module]:
    """The layers GradCAM hooks by default: the last nn.Conv2d of the model, or of each
    ensemble member (MC dropout wrappers are looked through).

    Raises:
        ValueError: the model (or a member) has no nn.Conv2d.
    """
    if isinstance(model, DeepEnsemble):
        layers = []
        for index, member in enumerate(model.members):
            try:
                layers += gradcam_layers(member)
            except ValueError as error:
                raise ValueError(f"ensemble member {index}: {error}") from None
        return layers
    layer = last_module(model, nn.Conv2d)
    if layer is None:
        raise ValueError(
            f"method='gradcam' needs a convolutional layer, but {type(model).__name__} has no "
            "nn.Conv2d; pass layer= (a module whose output is (B, C, h, w)) or use "
            "method='saliency' or 'integrated_gradients'"
        )
    return [layer]


def unwrap_for_features(model: nn.Module, layer: nn.Module | None) -> list[nn.Module]:
    """The deterministic networks whose activations make the features.

    MC dropout is looked through (its network runs in eval mode, dropout off: the features are
    the expected activations, not one noisy draw); an ensemble gives every member, or, when
    `layer` is given, the member that holds it.

    Raises:
        ValueError: `layer` is not a submodule of the model.
    """
    if isinstance(model, MCDropout):
        return unwrap_for_features(model.model, layer)
    if isinstance(model, DeepEnsemble):
        if layer is None:
            return [net for member in model.members for net in unwrap_for_features(member, None)]
        for member in model.members:
            if holds(member, layer):
                return unwrap_for_features(member, layer)
    if layer is not None and not holds(model, layer):
        raise ValueError(
            f"layer must be a submodule of the model; got {type(layer).__name__}, which "
            f"{type(model).__name__} does not contain"
        )
    return [model]


def holds(model: nn.Module, layer: nn.Module) -> bool:
    """Whether `layer` is `model` or one of its submodules."""
    return any(module is layer for module in model.modules())


def capture(model: nn.Module, layer: nn.Module, x: Tensor, *, inputs: bool) -> Tensor:
    """Run `model` on x once and return what `layer` saw (its input) or made (its output).

    Returns:
        (B, D) the captured tensor, flattened after the batch dim, detached.

    Raises:
        ValueError: the layer did not run exactly once, or not on B rows.
    """
    seen: list[Tensor] = []

    def keep(value: object) -> None:
        if isinstance(value, tuple):
            value = value[0] if value else None
        if isinstance(value, Tensor):
            seen.append(value.detach())

    if inputs:
        handle = layer.register_forward_pre_hook(lambda _module, args: keep(args))
    else:
        handle = layer.register_forward_hook(lambda _module, _args, output: keep(output))
    try:
        model(x)
    finally:
        handle.remove()
    name = type(layer).__name__
    if len(seen) != 1:
        raise ValueError(
            f"layer {name} must run exactly once per forward pass to give features; it ran "
            f"{len(seen)} times"
        )
    (value,) = seen
    if value.dim() < 2 or value.shape[0] != x.shape[0]:
        raise ValueError(
            f"layer {name} must see (B, ...) activations with B = {x.shape[0]}; got "
            f"{tuple(value.shape)}"
        )
    return value.flatten(1)
