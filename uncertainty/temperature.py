"""Temperature scaling (Guo et al. 2017): one scalar T fitted by NLL on held-out logits."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import as_tensor, check_labels, reject_probabilities
from .predictive import grad_only_for_input, log_mean_prob

# Golden-section search on log T: NLL is convex in 1/T for one model's logits, hence unimodal in
# log T, and a bracketing search needs no gradients, learning rate or stopping heuristics.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _check_logits(logits: Any, name: str = "logits") -> Tensor:
    logits = as_tensor(logits, name)
    if not torch.is_floating_point(logits):
        raise TypeError(f"{name} must be a floating-point tensor; got {logits.dtype}")
    if logits.ndim not in (2, 3) or logits.numel() == 0:
        raise ValueError(
            f"{name} must have shape (B, K) or (S, B, K) and not be empty; got shape "
            f"{tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} must be finite; got NaN or inf")
    # An error, not a warning as in the wrappers: the fit sees a whole held-out set, where real
    # logits never pass for probabilities, and a temperature fitted on probabilities (T ~ 0.15,
    # sharpening them back) is certainly wrong, then silently baked into `calibrate(model)`.
    reject_probabilities(logits, name)
    return logits


def _scaled_log_probs(logits: Tensor, temperature: Tensor | float) -> Tensor:
    """(B, K) log predictive of logits divided by T; (S, B, K) samples are tempered one by one
    and then averaged in probability space."""
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    return log_mean_prob(log_probs) if logits.ndim == 3 else log_probs


class TemperatureScaler(nn.Module):
    """Divides logits by a temperature T fitted on held-out data by negative log-likelihood.

    Works for single models ((B, K) logits) and for ensembles or MC dropout in two ways: fit on
    the wrapper's output (its log mean probability, (B, K)), or on its per-sample logits
    ((S, B, K), e.g. `ens.sample_log_probs(x)`; log-probabilities work as logits), each sample
    then tempered before the average. Apply it the same way it was fitted; `calibrate(model)`
    does this for you. The state dict holds T only: `fitted_on_samples` (which way it was
    fitted) is a plain attribute, set by `fit`.

    In short: `fit` takes logits (probabilities are rejected with a hint), the fitted T is
    the 0-dim tensor `temperature` (`float(scaler.temperature)`), and `calibrate(model)`
    returns a new module wrapping `model` (which is left unchanged) whose outputs are the
    tempered logits.

    Args:
        temperature: the initial T (> 0); 1.0 is the identity.

    Example:
        >>> scaler = TemperatureScaler().fit(val_logits, val_y)
        >>> calibrated = scaler.calibrate(model)   # an nn.Module, logits / T
    """

    temperature: Tensor

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be a number > 0; got {temperature!r}")
        # A buffer, not a Parameter: T is fitted by `fit`, never by an outer optimiser.
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.fitted_on_samples = False

    def nll(self, logits: Tensor, y: Tensor, temperature: float | None = None) -> float:
        """Mean NLL of the tempered predictive, in nats.

        Args:
            logits: (B, K) logits or (S, B, K) per-sample logits.
            y: (B,) labels.
            temperature: T to use; the fitted one when None.

        Returns:
            The NLL as a float.
        """
        logits = _check_logits(logits)
        y = check_labels(y, logits.shape[-1], logits.shape[-2]).to(logits.device)
        t = float(self.temperature) if temperature is None else temperature
        with torch.no_grad():
            return float(F.nll_loss(_scaled_log_probs(logits.double(), t), y))

    def fit(
        self,
        logits: Tensor,
        y: Tensor,
        *,
        bounds: tuple[float, float] = (0.01, 100.0),
        tol: float = 1e-6,
    ) -> TemperatureScaler:
        """Fit T by minimising the NLL on held-out logits (golden-section search on log T).

        Args:
            logits: (B, K) logits, or (S, B, K) per-sample logits of an ensemble / MC dropout
                (log-probabilities work too). Not probabilities: those are rejected.
            y: (B,) integer labels.
            bounds: the interval searched for T. A result at a bound means the data is
                (nearly) separable or degenerate; the bound is returned, not infinity.
            tol: stop when the bracket on log T is narrower than this.

        Returns:
            self, fitted; the fitted T is `self.temperature` (a 0-dim tensor).

        Raises:
            ValueError: when `logits` look like probabilities (every row non-negative and
                summing to 1): the model must return logits (remove its final softmax).
        """
        logits = _check_logits(logits).detach().double()
        y = check_labels(y, logits.shape[-1], logits.shape[-2]).to(logits.device)
        low, high = bounds
        if not (0 < low < high):
            raise ValueError(f"bounds must satisfy 0 < low < high; got {bounds!r}")

        def loss(log_t: float) -> float:
            return float(F.nll_loss(_scaled_log_probs(logits, math.exp(log_t)), y))

        a, b = math.log(low), math.log(high)
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        with torch.no_grad():
            fc, fd = loss(c), loss(d)
            while b - a > tol:
                if fc <= fd:
                    b, d, fd = d, c, fc
                    c = b - _GOLDEN * (b - a)
                    fc = loss(c)
                else:
                    a, c, fc = c, d, fd
                    d = a + _GOLDEN * (b - a)
                    fd = loss(d)
        self.temperature.fill_(math.exp((a + b) / 2.0))
        self.fitted_on_samples = logits.ndim == 3
        return self

    def forward(self, logits: Tensor) -> Tensor:
        """Apply the temperature.

        Args:
            logits: (B, K) logits, or (S, B, K) per-sample logits.

        Returns:
            (B, K): logits / T for (B, K) input; for (S, B, K) input the log mean probability of
            the tempered samples.
        """
        if logits.ndim == 2:
            return logits / self.temperature.to(logits.dtype)
        if logits.ndim == 3:
            return _scaled_log_probs(logits, self.temperature.to(logits.dtype))
        raise ValueError(
            f"logits must have shape (B, K) or (S, B, K); got shape {tuple(logits.shape)}"
        )

    def calibrate(self, model: nn.Module) -> TemperatureScaled:
        """Wrap `model` so that its outputs are tempered the way this scaler was fitted.

        Args:
            model: a classifier, DeepEnsemble or MCDropout.

        Returns:
            An nn.Module returning (B, K) tempered logits.
        """
        return TemperatureScaled(model, self)

    def extra_repr(self) -> str:
        return f"temperature={float(self.temperature):.4g}"


class TemperatureScaled(nn.Module):
    """A model whose logits (or per-sample logits) pass through a fitted TemperatureScaler.

    Args:
        model: the classifier; when the scaler was fitted on samples it must have
            `sample_log_probs` (MCDropout, DeepEnsemble) or `sample_probs`.
        scaler: the fitted scaler.
    """

    def __init__(self, model: nn.Module, scaler: TemperatureScaler) -> None:
        super().__init__()
        self.model = model
        self.scaler = scaler
        if scaler.fitted_on_samples and not (
            hasattr(model, "sample_log_probs") or hasattr(model, "sample_probs")
        ):
            raise ValueError(
                "the scaler was fitted on (S, B, K) samples, so model must have "
                f"sample_log_probs or sample_probs; {type(model).__name__} has neither"
            )

    def _sample_log_probs(self, x: Tensor) -> Tensor:
        method = getattr(self.model, "sample_log_probs", None)
        if callable(method):
            return method(x)
        probs = self.model.sample_probs(x)  # type: ignore[operator]
        # Clamped so that log(0) = -inf cannot turn into NaN gradients.
        return torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))

    def sample_probs(self, x: Tensor) -> Tensor:
        """Tempered probability samples.

        A scaler fitted on the mean prediction defines only the tempered mean, so S = 1 then
        (and `decompose` reports no epistemic part): fit on (S, B, K) samples to keep them.

        Args:
            x: (B, ...) inputs.

        Returns:
            (S, B, K) probabilities; S = 1 unless the scaler was fitted on samples. With a
            graph only when `x` requires grad.
        """
        with grad_only_for_input(x):  # as uncertainty.sample_probs: see there why
            if self.scaler.fitted_on_samples:
                log_probs = self._sample_log_probs(x)
                return F.softmax(log_probs / self.scaler.temperature.to(log_probs.dtype), dim=-1)
            return F.softmax(self.forward(x), dim=-1)[None]

    def forward(self, x: Tensor) -> Tensor:
        """(B, K) tempered logits of `model` on inputs x (B, ...)."""
        if self.scaler.fitted_on_samples:
            return self.scaler(self._sample_log_probs(x))
        return self.scaler(self.model(x))
