"""The shared loop's semantics: best iterate, early stop, restarts, EOT, eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import pgd
from attacks.losses import cross_entropy
from tests.attacks.models import Recorder


def test_returns_first_fooling_iterate_else_highest_loss(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:96], digits_split["y_test"][:96]
    recorder = Recorder(digits_model)
    steps = 6
    x_adv = pgd(recorder, x, y, 0.08, steps=steps, generator=torch.Generator().manual_seed(0))

    # Calls 0..steps-1 score x_0..x_{steps-1} on the full batch; the last scores x_steps
    # only for the samples no earlier iterate fooled.
    full, final = recorder.seen[1:steps], recorder.seen[steps]
    with torch.no_grad():
        iterates = [(xs, digits_model(xs)) for xs in full]
    expected = torch.empty_like(x)
    unfooled = []
    for i in range(len(x)):
        fooling = [xs[i] for xs, logits in iterates if logits[i].argmax() != y[i]]
        if fooling:
            expected[i] = fooling[0]
        else:
            unfooled.append(i)
    assert final.shape[0] == len(unfooled)
    with torch.no_grad():
        for row, i in enumerate(unfooled):
            candidates = [xs[i] for xs, _ in iterates] + [final[row]]
            losses = [float(cross_entropy(digits_model(c[None]), y[i : i + 1])) for c in candidates]
            if digits_model(final[row][None]).argmax() != y[i]:
                expected[i] = final[row]
            else:
                expected[i] = candidates[max(range(len(losses)), key=losses.__getitem__)]
    assert len(unfooled) < len(x)  # the case must exercise both branches
    torch.testing.assert_close(x_adv, expected)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_early_stop_keeps_the_verdict_and_saves_work(digits_model, digits_split, norm) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    eps = 0.1 if norm == "linf" else 1.0
    runs = {}
    for early_stop in (False, True):
        recorder = Recorder(digits_model)
        x_adv = pgd(
            recorder,
            x,
            y,
            eps,
            norm=norm,
            steps=10,
            early_stop=early_stop,
            generator=torch.Generator().manual_seed(0),
        )
        with torch.no_grad():
            verdict = digits_model(x_adv).argmax(dim=1) == y
        runs[early_stop] = (verdict, sum(len(b) for b in recorder.seen))
    assert torch.equal(runs[True][0], runs[False][0])
    assert runs[True][1] < runs[False][1]


def test_restarts_never_hurt_and_skip_fooled_samples(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    one = pgd(digits_model, x, y, 0.06, steps=5, generator=torch.Generator().manual_seed(0))
    recorder = Recorder(digits_model)
    four = pgd(
        recorder, x, y, 0.06, steps=5, restarts=4, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        robust_one = digits_model(one).argmax(dim=1) == y
        robust_four = digits_model(four).argmax(dim=1) == y
    # The first restart is the single run; later ones only add fooled samples.
    assert not bool((robust_four & ~robust_one).any())
    assert int(robust_four.sum()) < int(robust_one.sum())
    first_call_of_restarts = [len(b) for b in recorder.seen[::6]]
    assert first_call_of_restarts[0] == len(x) and first_call_of_restarts[1] < len(x)


class NoisyNet(nn.Module):
    """A stochastic model: Gaussian noise on its input in every forward call."""

    def __init__(self, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale, self.calls = model, scale, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x + self.scale * torch.randn_like(x))


def test_eot_averages_several_forward_passes_per_step(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:64], digits_split["y_test"][:64]
    noisy = NoisyNet(digits_model, scale=0.05)
    pgd(noisy, x, y, 0.1, steps=4, eot_samples=5)
    assert noisy.calls == 5 * (4 + 1)  # 4 gradient steps and the final scoring
    torch.manual_seed(0)
    one = pgd(NoisyNet(digits_model, 0.3), x, y, 0.1, steps=10, eot_samples=1)
    torch.manual_seed(0)
    many = pgd(NoisyNet(digits_model, 0.3), x, y, 0.1, steps=10, eot_samples=16)

    def expected_loss(x_adv: torch.Tensor) -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            net = NoisyNet(digits_model, 0.3)
            return float(torch.stack([cross_entropy(net(x_adv), y) for _ in range(64)]).mean())

    # Averaging the gradient over the noise makes the attack stronger in expectation.
    assert expected_loss(many) > expected_loss(one)


def test_eval_mode_during_attack_and_dropout_off(digits_split) -> None:
    torch.manual_seed(0)
    modes: list[bool] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(64, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            modes.append(self.net[1].training)
            return self.net(x)

    probe = Probe().train()
    x, y = digits_split["x_test"][:8], digits_split["y_test"][:8]
    first = pgd(probe, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    second = pgd(probe, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert modes and not any(modes)
    assert probe.training and probe.net[1].training
    assert torch.equal(first, second)  # deterministic: dropout was off


def test_max_loss_returns_the_optimum_even_for_fooled_samples() -> None:
    """On a binary linear model the best linf margin gain is eps * ||w1 - w0||_1 for every
    sample; first_fooling stops early on the samples it fools, max_loss does not."""
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(2, 10, generator=generator, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 2)).double()
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.zero_()
    x = 0.35 + 0.3 * torch.rand(16, 10, generator=generator, dtype=torch.float64)
    y = torch.zeros(16, dtype=torch.long)
    w_diff = weight[1] - weight[0]
    optimum = 0.03 * w_diff.abs().sum()

    def gain(select: str) -> torch.Tensor:
        x_adv = pgd(model, x, y, 0.03, steps=20, loss="margin", random_start=False, select=select)
        return x_adv @ w_diff - x @ w_diff

    torch.testing.assert_close(gain("max_loss"), optimum.expand(16), rtol=1e-6, atol=1e-9)
    first = gain("first_fooling")
    assert bool((first < optimum - 1e-6).any())  # some samples stopped at their first fool


def test_max_loss_restarts_attack_every_sample_and_never_lower_the_loss(
    digits_model, digits_split
) -> None:
    x, y = digits_split["x_test"][:40], digits_split["y_test"][:40]
    recorder = Recorder(digits_model)
    four = pgd(
        recorder,
        x,
        y,
        0.2,
        steps=3,
        restarts=4,
        select="max_loss",
        generator=torch.Generator().manual_seed(0),
    )
    assert [len(b) for b in recorder.seen] == [40] * 16  # 4 restarts x (3 steps + final)
    one = pgd(
        digits_model,
        x,
        y,
        0.2,
        steps=3,
        select="max_loss",
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        assert bool(
            (
                cross_entropy(digits_model(four), y) >= cross_entropy(digits_model(one), y) - 1e-6
            ).all()
        )


def test_max_loss_and_early_stop_exclude_each_other(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:4], digits_split["y_test"][:4]
    with pytest.raises(ValueError, match=r"early_stop=True .* select='max_loss'"):
        pgd(digits_model, x, y, 0.1, early_stop=True, select="max_loss")
    with pytest.raises(ValueError, match=r"select must be one of 'first_fooling', 'max_loss'"):
        pgd(digits_model, x, y, 0.1, select="last")


def test_an_objective_replaces_the_loss(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:64], digits_split["y_test"][:64]

    def ce_objective(model, inputs, labels):
        logits = model(inputs)
        return cross_entropy(logits, labels), logits

    by_loss = pgd(digits_model, x, y, 0.1, steps=5, generator=torch.Generator().manual_seed(0))
    by_objective = pgd(
        digits_model,
        x,
        y,
        0.1,
        steps=5,
        objective=ce_objective,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(by_loss, by_objective)
    with pytest.raises(ValueError, match=r"loss ce_bad must return a per-sample tensor"):

        def ce_bad(model, inputs, labels):
            logits = model(inputs)
            return cross_entropy(logits, labels).mean(), logits

        pgd(digits_model, x, y, 0.1, objective=ce_bad)
