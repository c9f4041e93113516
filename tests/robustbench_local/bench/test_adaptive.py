"""The uncertainty-aware adaptive attack: it still fools, and it hides from the detector."""

from __future__ import annotations

import pytest
import torch

from attacks import pgd
from robustbench_local.bench.adaptive import evasive_objective, pgd_adaptive
from robustbench_local.bench.protocol import predict
from robustbench_local.zoo.datasets import load_tensors
from robustbench_local.zoo.training import default_spec, load_or_train
from uncertainty import DeepEnsemble, decompose, metrics, sample_probs


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> DeepEnsemble:
    cache = tmp_path_factory.mktemp("cache")
    members = [
        load_or_train(
            default_spec("digits-cnn", "digits", "standard", seed=s, epochs=8), cache_dir=cache
        )[0]
        for s in range(3)
    ]
    return DeepEnsemble(members).eval()


def _detection(model, x, y, x_adv) -> tuple[float, float]:
    """(robust accuracy, AUROC of epistemic uncertainty for adversarial vs clean)."""
    clean, adv = predict(model, x, y)[0], predict(model, x_adv, y)[0]
    scores = torch.cat([torch.from_numpy(clean.epistemic), torch.from_numpy(adv.epistemic)])
    is_adv = torch.cat([torch.zeros(len(y)), torch.ones(len(y))]).bool()
    robust = (clean.pred == y.numpy()) & (adv.pred == y.numpy())
    return float(robust.mean()), metrics.auroc(scores, is_adv)


def test_adaptive_attack_lowers_the_epistemic_auroc_while_fooling(ensemble) -> None:
    x, y = load_tensors("digits", "test", n_examples=200)
    eps = 0.15
    plain = pgd(ensemble, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0))
    adaptive = pgd_adaptive(
        ensemble, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0)
    )
    clean_accuracy = float((predict(ensemble, x, y)[0].pred == y.numpy()).mean())
    plain_robust, plain_auroc = _detection(ensemble, x, y, plain)
    adaptive_robust, adaptive_auroc = _detection(ensemble, x, y, adaptive)
    assert plain_auroc > 0.8  # plain PGD is easy to detect by mutual information...
    assert adaptive_auroc < plain_auroc - 0.2  # ...the adaptive attack is not,
    # and it still fools most of what plain PGD fools.
    assert clean_accuracy - adaptive_robust > 0.7 * (clean_accuracy - plain_robust)


def test_a_failed_adaptive_attack_submits_the_clean_input(ensemble) -> None:
    x, y = load_tensors("digits", "test", n_examples=40)
    x_adv = pgd_adaptive(ensemble, x, y, 0.01, steps=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fooled = ensemble(x_adv).argmax(dim=1) != y
    assert bool((~fooled).any())
    assert torch.equal(x_adv[~fooled], x[~fooled])


def test_evasive_objective_pays_for_excess_mutual_information(ensemble) -> None:
    x, y = load_tensors("digits", "test", n_examples=16)
    free = evasive_objective(weight=0.0, target=0.0, margin_cap=1.0)
    taxed = evasive_objective(weight=5.0, target=0.0, margin_cap=1.0)
    with torch.no_grad():
        value_free, logits = free(ensemble, x, y)
        value_taxed, _ = taxed(ensemble, x, y)
        mi = decompose(sample_probs(ensemble, x)).epistemic
    torch.testing.assert_close(value_free - value_taxed, 5.0 * mi)
    assert bool((value_free <= 1.0 + 1e-6).all())  # the margin is capped
    torch.testing.assert_close(logits.exp().sum(dim=1), torch.ones(16))


def test_each_sample_keeps_its_own_clean_uncertainty(ensemble, monkeypatch) -> None:
    """The target is each sample's clean mutual information, not a batch statistic: a
    sample's target (and so its attack) does not depend on the batch it is attacked in."""
    import robustbench_local.bench.adaptive as adaptive

    targets = []

    def spy(weight, target, margin_cap):
        targets.append(target)
        return evasive_objective(weight, target, margin_cap)

    monkeypatch.setattr(adaptive, "evasive_objective", spy)
    x, y = load_tensors("digits", "test", n_examples=40)
    for n in (10, 40):
        pgd_adaptive(ensemble, x[:n], y[:n], 0.05, steps=1, restarts=1)
    small, large = targets
    assert small.shape == (10,) and large.shape == (40,)
    with torch.no_grad():
        clean = decompose(sample_probs(ensemble, x)).epistemic
    torch.testing.assert_close(large, clean, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(small, large[:10], rtol=1e-4, atol=1e-7)
    assert float(large.std()) > 0  # the samples differ: a single number would not do


def test_a_per_sample_target_taxes_each_sample_above_its_own_level(ensemble) -> None:
    x, y = load_tensors("digits", "test", n_examples=8)
    with torch.no_grad():
        mi = decompose(sample_probs(ensemble, x)).epistemic
        target = mi * torch.tensor([0.0, 2.0] * 4)  # half below their level, half above
        free, _ = evasive_objective(0.0, target, 1.0)(ensemble, x, y)
        taxed, _ = evasive_objective(5.0, target, 1.0)(ensemble, x, y)
    torch.testing.assert_close(free - taxed, 5.0 * torch.relu(mi - target))
    with pytest.raises(ValueError, match="per-sample target"):
        evasive_objective(1.0, target, 1.0)(ensemble, x[:4], y[:4])
