"""The predictive distribution of a model, whatever kind of model it is."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import warn_if_probabilities


def grad_only_for_input(x: Any) -> AbstractContextManager[None]:
    """A context that records a graph only when `x` requires grad (an attack's input).

    Probability samples are read in two ways: a lab plots them and computes metrics (the
    graph back to the parameters is useless there, costs memory, and makes `plt.hist` fail
    with "Can't call numpy() on Tensor that requires grad"), and an attack differentiates
    them with respect to its input, which then requires grad (also inside `torch.func.grad`).
    So the graph follows the input: parameters alone never ask for one.

    Args:
        x: the model's input.

    Returns:
        `torch.set_grad_enabled(...)`, to use in a `with` statement.
    """
    wanted = bool(getattr(x, "requires_grad", False))
    return torch.set_grad_enabled(torch.is_grad_enabled() and wanted)


def log_mean_prob(log_probs: Tensor) -> Tensor:
    """Log of the mean probability over samples, computed stably in log space.

    Args:
        log_probs: (S, B, K) log-probabilities (log_softmax of each sample's logits).

    Returns:
        (B, K) `log(mean_s exp(log_probs[s]))`: normalised log-probabilities, hence valid logits.
    """
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must have shape (S, B, K); got shape {tuple(log_probs.shape)}")
    # logsumexp - log S never forms exp(log p) for tiny p, so a member that is sure of a class
    # does not underflow the mean to log(0) = -inf.
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


class SampledClassifier(nn.Module, ABC):
    """A classifier whose prediction is the mean of S sampled predictive distributions.

    Subclasses (DeepEnsemble: S = members; MCDropout: S = dropout samples) supply
    `sample_log_probs`; `sample_probs` and `forward` follow from it, so every such model is
    at once a source of samples for `decompose` and a plain (B, K)-logit model for attacks.
    A subclass without `sample_log_probs` cannot be instantiated (abstract method).

    Attributes:
        stochastic: whether `forward` can give different outputs for the same input (in eval
            mode, as attacks run it). None (the default here): unknown, and an attack that
            needs to know runs the model twice to find out; a subclass that knows declares
            True (MCDropout) or False. Gradient attacks pick their defaults by it: a
            stochastic model's single "fooled" verdict may not hold at evaluation.
    """

    stochastic: bool | None = None

    @abstractmethod
    def sample_log_probs(self, x: Tensor) -> Tensor:
        """(S, B, K) log-probabilities of the S samples for (B, ...) inputs."""

    def sample_probs(self, x: Tensor) -> Tensor:
        """Probabilities of the S samples, ready to plot or to pass to `decompose`.

        The result carries a graph only when `x` requires grad (an attack differentiating
        with respect to its input); otherwise it is computed without one, so
        `plt.hist(decompose(probs).epistemic)` works. Use `sample_log_probs` or `forward`
        to train through the samples.

        Args:
            x: (B, ...) inputs.

        Returns:
            (S, B, K) probabilities.
        """
        with grad_only_for_input(x):
            return self.sample_log_probs(x).exp()

    def forward(self, x: Tensor) -> Tensor:
        """(B, K) log of the mean sample probability (valid logits) for (B, ...) inputs."""
        return log_mean_prob(self.sample_log_probs(x))


def sample_probs(model: nn.Module, x: Tensor) -> Tensor:
    """Probability samples of any model, so a runner can treat every model the same way.

    Calls `model.sample_probs(x)` when the model has it (DeepEnsemble, MCDropout); otherwise
    returns `softmax(model(x))` with a leading sample dim of 1, which `decompose` turns into
    aleatoric = total and epistemic = 0. A plain model whose outputs look like probabilities
    (it ends in softmax) gets a UserWarning: softmax would be applied twice.

    The result carries a graph only when `x` requires grad (an attack differentiating with
    respect to its input, as the benchmark's adaptive attack does); for a plain `x` it is
    computed without one, ready for `plt.hist` or `.numpy()`.

    Args:
        model: a classifier returning (B, K) logits, or a wrapper with `sample_probs`.
        x: (B, ...) inputs.

    Returns:
        (S, B, K) probabilities; S = 1 for a plain model.
    """
    method = getattr(model, "sample_probs", None)
    with grad_only_for_input(x):
        if callable(method):
            probs = method(x)
            if not isinstance(probs, Tensor) or probs.ndim != 3:
                shape = tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__
                raise ValueError(
                    f"model.sample_probs(x) must return an (S, B, K) tensor; got {shape}"
                )
            return probs
        logits = model(x)
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"model(x) must return (B, K) logits; got {shape}")
        warn_if_probabilities(logits, "model(x)")
        return F.softmax(logits, dim=-1)[None]
