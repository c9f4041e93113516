"""Distribution shift: corruptions at severities 1..5, OOD images, random EOT transformations.

Pure, seeded tensor functions for the benchmark and for notebooks:

    from robustbench_local.shifts import CORRUPTIONS, OOD_SOURCES, TRANSFORMS
    from robustbench_local.shifts import corrupt, ood_images, random_transform
    x_c = corrupt(x, "gaussian_noise", 3, seed=0, indices=dataset_indices)  # (B, C, H, W)
    x_ood = ood_images("sklearn-photos", 500, (1, 28, 28))                  # (500, 1, 28, 28)
    x_t = random_transform(["rotate", "brightness"], 3)(x, torch.Generator().manual_seed(0))

The corruptions follow the published CIFAR-10-C (Hendrycks and Dietterich 2019) and MNIST-C
(Mu and Gilmer 2019) severity tables (`tables`), scaled to the image size; each sample's
randomness comes from its own stream (`streams`), so results do not depend on batching.
`random_transform` (`transforms`) is the attack-side counterpart: differentiable random
transformations drawn per sample from a caller's generator, for expectation over
transformation; `TRANSFORMS` lists them.

This package imports torch, torchvision and the project's generic `robustbench_local.registry`
only (scikit-learn lazily, for its sample photos); nothing of ``robustbench_local.bench``,
``results``, ``zoo``, ``cli`` or ``reports``: the benchmark builds on it, not the reverse.
"""

from robustbench_local.shifts.geometric import rotate
from robustbench_local.shifts.ood import OOD_SOURCES, OodSource, match_shape, ood_images
from robustbench_local.shifts.registry import (
    CORRUPTIONS,
    FAMILIES,
    MAX_SEVERITY,
    Corruption,
    corrupt,
)
from robustbench_local.shifts.tables import Table
from robustbench_local.shifts.transforms import TRANSFORMS, RandomTransform, random_transform

__all__ = [
    "CORRUPTIONS",
    "FAMILIES",
    "MAX_SEVERITY",
    "OOD_SOURCES",
    "TRANSFORMS",
    "Corruption",
    "OodSource",
    "RandomTransform",
    "Table",
    "corrupt",
    "match_shape",
    "ood_images",
    "random_transform",
    "rotate",
]
