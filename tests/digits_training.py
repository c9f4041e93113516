"""One seeded recipe for the small digits CNN that several test folders train.

The attack tests train it for 15 epochs, the shift tests for 8 and the explain tests for 5
(fewer epochs, less time; each folder asks only what its assertions need).
"""

from __future__ import annotations

import torch
from torch import nn

from tests.attacks.models import DigitsCNN


def train_digits_cnn(split: dict[str, torch.Tensor], epochs: int, *, one_thread: bool) -> nn.Module:
    """DigitsCNN trained with Adam (lr 3e-3, batches of 64, seeded), in eval mode.

    Args:
        split: ``digits_split`` (x_train (N, 1, 8, 8), y_train (N,)).
        epochs: passes over the training images.
        one_thread: train on one intra-op thread (session fixtures run before the per-test
            ``one_thread`` fixture; on a busy 2-core machine one thread is fastest).
    """
    threads = torch.get_num_threads()
    if one_thread:
        torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = DigitsCNN()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = split["x_train"], split["y_train"]
        generator = torch.Generator().manual_seed(1)
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(64):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    for parameter in model.parameters():
        parameter.grad = None
    return model
