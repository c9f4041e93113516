"""Uncertainty heads (deep ensembles, MC dropout, heteroscedastic logits), the aleatoric /
epistemic decomposition, temperature scaling and calibration / detection metrics.

    from uncertainty import DeepEnsemble, MCDropout, decompose, sample_probs
    ens = DeepEnsemble([m1, m2, m3])     # nn.Module: forward(x) -> log mean probs (B, K)
    mcd = MCDropout(model, samples=30)   # dropout on, every other layer in eval
    u = decompose(sample_probs(ens, x))  # u.total, u.aleatoric, u.epistemic: (B,), nats
"""

from . import metrics
from .decomposition import Uncertainty, decompose
from .ensemble import DeepEnsemble, Vectorize
from .heteroscedastic import HeteroscedasticHead
from .mc_dropout import MCDropout
from .predictive import SampledClassifier, log_mean_prob, sample_probs
from .temperature import TemperatureScaled, TemperatureScaler

__all__ = [
    "DeepEnsemble",
    "HeteroscedasticHead",
    "MCDropout",
    "SampledClassifier",
    "TemperatureScaled",
    "TemperatureScaler",
    "Uncertainty",
    "Vectorize",
    "decompose",
    "log_mean_prob",
    "metrics",
    "sample_probs",
]
