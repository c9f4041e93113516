"""The uncertainty-aware adaptive attack: fool the model while keeping its epistemic
uncertainty at the clean level, so a detector that flags high mutual information is tested
against an attacker who knows about it (Carlini and Wagner 2017, "Adversarial examples are
not easily detected").

It composes ``attacks.pgd`` with ``uncertainty``'s predictive samples here, because the
attack functions stay free of ``uncertainty`` (the dependency rules in docs/architecture.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks import Objective, pgd
from attacks.descent import eval_mode
from attacks.losses import margin
from uncertainty import decompose, sample_probs

__all__ = ["evasive_objective", "pgd_adaptive"]

_TINY = 1e-12  # keeps log(p) finite where a probability underflows


def evasive_objective(weight: float, target: float | Tensor, margin_cap: float) -> Objective:
    """min(margin, cap) - weight * max(0, mutual information - target), per sample.

    The capped margin (on log mean probabilities) rewards fooling only up to ``cap``
    nats; beyond it the one way up is lowering the mutual information, which is what
    an attacker who wants to stay undetected needs (Carlini and Wagner's construction).

    Args:
        weight: nats of margin one nat of excess mutual information costs.
        target: mutual information an input may keep for free (the clean level): one
            number for every sample, or (B,), one per sample of the batch attacked (the
            objective must then see the whole batch, as ``select="max_loss"`` does).
        margin_cap: how far past the decision boundary fooling still pays.

    Returns:
        objective(model, x, y) -> (values (B,), logits (B, K)) for ``attacks.pgd``.
    """

    def objective(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(target, Tensor) and target.shape != (x.shape[0],):
            raise ValueError(
                f"the per-sample target has shape {tuple(target.shape)} but the objective "
                f"got {x.shape[0]} samples: attack the whole batch (select='max_loss')"
            )
        probs = sample_probs(model, x)  # (S, B, K), differentiable w.r.t. x
        logits = probs.mean(dim=0).clamp_min(_TINY).log()
        excess = F.relu(decompose(probs).epistemic - target)
        return margin(logits, y).clamp(max=margin_cap) - weight * excess, logits

    return objective


def pgd_adaptive(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    weight: float = 3.0,
    margin_cap: float = 1.0,
    norm: str = "linf",
    generator: torch.Generator | None = None,
    **pgd_options: object,
) -> Tensor:
    """PGD that fools the model while holding its mutual information at the clean level.

    Each sample's target level is its own clean mutual information (a batch statistic
    would make a sample's result depend on the batch it is attacked in). Each sample gets
    its highest-objective iterate (``select="max_loss"``): a fooling point with low
    uncertainty, not the first point that happened to fool. Where the attack does not
    fool the model, the clean input is returned: a failed attempt that raises the
    uncertainty would only help the detector, so an adaptive attacker submits nothing
    there (the clean input lies in every eps-ball). That is why its robust accuracy is
    not a bound on robustness: it is a detection-evasion attack.

    Args:
        model: a DeepEnsemble, MCDropout or any model (for a single model the mutual
            information is 0 and this is PGD on the capped margin).
        x: clean inputs (B, ...); y: labels (B,); eps: the ball's radius.
        weight: nats of margin per nat of excess mutual information (3 fooled as many
            digits as plain PGD while hiding from the detector; larger fools fewer).
        margin_cap: nats past the decision boundary beyond which only stealth pays.
        norm, generator, **pgd_options: passed to ``attacks.pgd`` (early_stop defaults
            to False: every iterate must be scored for the highest objective).

    Returns:
        (B, ...) adversarial inputs.
    """
    with torch.no_grad(), eval_mode(model):
        target = decompose(sample_probs(model, x)).epistemic.detach()  # (B,)
    objective = evasive_objective(weight, target, margin_cap)
    options = {"early_stop": False, **pgd_options}
    x_adv = pgd(
        model,
        x,
        y,
        eps,
        norm=norm,
        generator=generator,
        objective=objective,
        select="max_loss",
        **options,
    )
    with torch.no_grad(), eval_mode(model):
        fooled = model(x_adv).argmax(dim=1) != y
    return torch.where(fooled.view(-1, *([1] * (x.dim() - 1))), x_adv, x)
