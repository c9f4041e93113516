"""A course lab in one file: train a tiny CNN on real handwritten digits, then attack it.

Runs on a laptop CPU in a few seconds, offline (the 1,797 8x8 digits ship with
scikit-learn):

    python examples/lab_attacks.py [--out lab_attacks.png]

It prints clean and robust accuracy under FGSM and PGD over a few epsilons and saves a
figure of clean vs adversarial images with the model's predictions and confidence.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from attacks import fgsm, pgd


def load_split(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Digits as images (N, 1, 8, 8) in [0, 1] and labels (N,): 1,437 train, 360 test."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1437], order[1437:]
    return x[train], y[train], x[test], y[test]


def tiny_cnn() -> nn.Module:
    """Logits (B, 10) for images (B, 1, 8, 8) in pixel space."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 15) -> nn.Module:
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(dim=1) == y).float().mean())


def save_figure(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    title: str,
    path: Path,
    n: int = 8,
) -> None:
    """Row 1: clean images; row 2: adversarial ones; each titled 'label -> prediction (conf)'."""
    with torch.no_grad():
        rows = [torch.softmax(model(batch[:n]), dim=1) for batch in (x, x_adv)]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.8))
    for row, (images, probs, name) in enumerate(
        zip((x, x_adv), rows, ("clean", "adversarial"), strict=True)
    ):
        confidence, prediction = probs.max(dim=1)
        for i in range(n):
            ax = axes[row, i]
            ax.imshow(images[i, 0], cmap="gray", vmin=0, vmax=1)
            wrong = int(prediction[i]) != int(y[i])
            ax.set_title(
                f"{int(y[i])}→{int(prediction[i])} ({confidence[i]:.0%})",
                fontsize=9,
                color="#d55e00" if wrong else "black",
            )
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 0].set_ylabel(name)
    fig.suptitle(title + "   (label→prediction (confidence); orange = fooled)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("lab_attacks.png"))
    args = parser.parse_args()

    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = load_split()
    model = train(tiny_cnn(), x_train, y_train)
    print(f"clean test accuracy: {accuracy(model, x_test, y_test):.1%}")
    print(f"{'eps':>6} {'fgsm':>8} {'pgd-20':>8}")
    for eps in (0.05, 0.1, 0.2):
        x_fgsm = fgsm(model, x_test, y_test, eps)
        x_pgd = pgd(
            model, x_test, y_test, eps, steps=20, generator=torch.Generator().manual_seed(0)
        )
        print(
            f"{eps:6.2f} {accuracy(model, x_fgsm, y_test):8.1%} "
            f"{accuracy(model, x_pgd, y_test):8.1%}"
        )
    save_figure(model, x_test, x_pgd, y_test, f"PGD-20, eps={eps}", args.out)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
