"""A course lab in one file: train a tiny CNN on real handwritten digits, then attack it.

Runs on a laptop CPU in seconds, offline (the 1,797 8x8 digits ship with scikit-learn):

    python examples/lab_attacks.py [--out lab_out] [--fast]

It prints clean and robust accuracy under FGSM and PGD over an eps sweep, then writes to
the output folder:

- accuracy_vs_eps.png: accuracy against eps for both attacks;
- examples.png: at the eps where the PGD robust accuracy is nearest 50 %, correctly
  classified digits that survive the attack, then digits it fools, with the amplified
  perturbation between the clean and the attacked row.

`--fast` trains for fewer epochs and attacks with fewer steps (what CI runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from attacks import fgsm, pgd, robust_accuracy, success_rate
from robustbench_local.plotting import plot_accuracy_vs_eps, plot_examples

EPS = (0.0, 0.05, 0.1, 0.15, 0.2)


def load_split(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Digits as images (N, 1, 8, 8) in [0, 1] and labels (N,): 1,437 train, 360 test."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1437], order[1437:]
    return x[train], y[train], x[test], y[test]


def tiny_cnn(dropout: float = 0.0) -> nn.Module:
    """Logits (B, 10) for images (B, 1, 8, 8) in pixel space (no softmax at the end)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),  # p = 0 is the identity; MC dropout needs p > 0
        nn.Linear(32 * 4 * 4, 10),
    )


def train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 15, seed: int = 0
) -> nn.Module:
    """Adam on cross-entropy, batches of 64; returns the model in eval mode."""
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model.eval()


def mixed_examples(
    model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, n: int = 8
) -> torch.Tensor:
    """Indices of up to n correctly classified digits: first those that survive the attack,
    then those it fools (half each, in test-set order), so one figure shows both outcomes."""
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y
        adv_ok = model(x_adv).argmax(1) == y
    survived = (clean_ok & adv_ok).nonzero().flatten()
    fooled = (clean_ok & ~adv_ok).nonzero().flatten()
    half = min(n // 2, len(survived), len(fooled))
    rest = n - 2 * half  # when one outcome is rare, fill with the other
    if len(survived) >= len(fooled):
        return torch.cat([survived[: half + rest], fooled[:half]])
    return torch.cat([survived[:half], fooled[: half + rest]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("lab_out"), help="figure folder")
    parser.add_argument("--fast", action="store_true", help="fewer epochs and steps (CI)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    epochs, steps = (8, 10) if args.fast else (15, 20)

    torch.manual_seed(0)  # the weights' initialisation
    x_train, y_train, x_test, y_test = load_split()
    model = train(tiny_cnn(), x_train, y_train, epochs=epochs)
    print(f"clean test accuracy: {robust_accuracy(model, x_test, y_test):.1%}")

    # Robust accuracy over all test digits: a digit misclassified when clean counts as not
    # robust. The success rate is over the digits the model got right when clean.
    accuracy: dict[str, list[float]] = {"fgsm": [], f"pgd-{steps}": []}
    attacked: dict[float, torch.Tensor] = {}
    print(f"{'eps':>6} {'fgsm':>8} {f'pgd-{steps}':>8} {'success':>8}")
    for eps in EPS:
        if eps == 0:
            clean = robust_accuracy(model, x_test, y_test)
            accuracy["fgsm"].append(clean)
            accuracy[f"pgd-{steps}"].append(clean)
            continue
        x_fgsm = fgsm(model, x_test, y_test, eps)
        x_pgd = pgd(model, x_test, y_test, eps, steps=steps, generator=0)
        attacked[eps] = x_pgd
        accuracy["fgsm"].append(robust_accuracy(model, x_fgsm, y_test, x=x_test))
        accuracy[f"pgd-{steps}"].append(robust_accuracy(model, x_pgd, y_test, x=x_test))
        rate = success_rate(model, x_test, x_pgd, y_test)
        print(
            f"{eps:6.2f} {accuracy['fgsm'][-1]:8.1%} {accuracy[f'pgd-{steps}'][-1]:8.1%} "
            f"{rate:8.1%}"
        )

    fig = plot_accuracy_vs_eps(
        EPS, accuracy, xlabel="eps (linf, pixels in [0, 1])", title="tiny CNN on digits"
    )
    fig.savefig(args.out / "accuracy_vs_eps.png", dpi=120)

    # The eps where about half the digits survive shows both outcomes at once.
    pgd_accuracy = dict(zip(EPS, accuracy[f"pgd-{steps}"], strict=True))
    eps = min(attacked, key=lambda e: abs(pgd_accuracy[e] - 0.5))
    x_adv = attacked[eps]
    shown = mixed_examples(model, x_test, x_adv, y_test)
    with torch.no_grad():
        probs_clean = model(x_test[shown]).softmax(dim=1)
        probs_adv = model(x_adv[shown]).softmax(dim=1)
    fig = plot_examples(x_test[shown], x_adv[shown], y_test[shown], probs_clean, probs_adv)
    fig.suptitle(
        f"PGD-{steps} at eps {eps} (robust accuracy {pgd_accuracy[eps]:.0%}): "
        "digits that survive, then digits it fools"
    )
    fig.savefig(args.out / "examples.png", dpi=120)
    print(f"examples at eps {eps}: {len(shown)} digits")
    print(f"figures: {args.out / 'accuracy_vs_eps.png'}, {args.out / 'examples.png'}")


if __name__ == "__main__":
    main()
