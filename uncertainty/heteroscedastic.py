"""Heteroscedastic classification head: aleatoric uncertainty as noise on the logits.

Kendall and Gal, "What Uncertainties Do We Need in Bayesian Deep Learning for Computer
Vision?", NeurIPS 2017, eq. (12): logits ~ N(mean(f), diag(exp(log_var(f)))), and the predictive
is the Monte Carlo average of the softmax over logit samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._rng import GeneratorLike, SeedSource, device_generator
from ._validation import check_positive_int
from .predictive import log_mean_prob


class HeteroscedasticHead(nn.Module):
    """A final layer that predicts a Gaussian over the logits and averages the softmax over it.

    `forward(features)` returns log(mean_t softmax(mean + std * eps_t)), a (B, K) valid logit
    vector, so `nn.Sequential(backbone, HeteroscedasticHead(d, k))` is a model like any other.
    `F.cross_entropy(model(x), y)` is then exactly the Kendall-Gal loss (the output is already
    normalised, so cross-entropy's log_softmax leaves it unchanged).

    The logit noise is aleatoric: the head has no `sample_probs`, so `uncertainty.sample_probs`
    sees one predictive distribution (S = 1) and `decompose` reports it as aleatoric. Wrap the
    model in MCDropout or a DeepEnsemble for epistemic samples.

    Args:
        in_features: D, the size of the feature vector.
        num_classes: K.
        samples: T, logit samples per input for the Monte Carlo average.
        generator: the noise's seed source: None (torch's global RNG), an int (a private
            generator advanced by every call) or a torch.Generator (used as given). One seed is
            drawn per call and the noise drawn on the input's device from it.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        samples: int = 100,
        generator: GeneratorLike = None,
    ) -> None:
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        num_classes = check_positive_int(num_classes, "num_classes")
        self.samples = check_positive_int(samples, "samples")
        self.mean = nn.Linear(in_features, num_classes)
        self.log_var = nn.Linear(in_features, num_classes)
        self._seeds = SeedSource(generator)

    def manual_seed(self, seed: int) -> HeteroscedasticHead:
        """Restart the noise's seed source from `seed`.

        Args:
            seed: the new seed.

        Returns:
            self, for chaining.
        """
        self._seeds = SeedSource.from_seed(seed)
        return self

    def logit_distribution(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of the Gaussian over the logits.

        Args:
            features: (B, D) features.

        Returns:
            (mean, log_var), each (B, K).
        """
        if features.ndim != 2:
            raise ValueError(
                f"features must have shape (B, D); got shape {tuple(features.shape)} "
                "(flatten the backbone's output first)"
            )
        return self.mean(features), self.log_var(features)

    def logit_samples(self, features: Tensor) -> Tensor:
        """Reparameterised logit samples, mean + exp(log_var / 2) * eps.

        Args:
            features: (B, D) features.

        Returns:
            (T, B, K) sampled logits; differentiable w.r.t. the features and the head.
        """
        mean, log_var = self.logit_distribution(features)
        generator = device_generator(mean.device, self._seeds.seeds(1)[0])
        eps = torch.randn(
            (self.samples, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype
        )
        return mean + torch.exp(0.5 * log_var) * eps

    def forward(self, features: Tensor) -> Tensor:
        """Log of the Monte Carlo predictive probability.

        Args:
            features: (B, D) features.

        Returns:
            (B, K) log mean probabilities (valid logits).
        """
        return log_mean_prob(F.log_softmax(self.logit_samples(features), dim=-1))

    def extra_repr(self) -> str:
        return f"samples={self.samples}"
