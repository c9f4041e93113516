"""Distribution shift: image corruptions at severities 1..5, and out-of-distribution images.

Pure, seeded tensor functions for the benchmark and for notebooks:

    from robustbench_local.shifts import corrupt, CORRUPTIONS, ood_images, OOD_SOURCES
    x_c = corrupt(x, "gaussian_noise", 3, seed=0, indices=dataset_indices)  # (B, C, H, W)
    x_ood = ood_images("sklearn-photos", 500, (1, 28, 28))                  # (500, 1, 28, 28)

The corruptions follow the published CIFAR-10-C (Hendrycks and Dietterich 2019) and MNIST-C
(Mu and Gilmer 2019) severity tables (`tables`), scaled to the image size; each sample's
randomness comes from its own stream (`streams`), so results do not depend on batching.

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

__all__ = [
    "CORRUPTIONS",
    "FAMILIES",
    "MAX_SEVERITY",
    "OOD_SOURCES",
    "Corruption",
    "OodSource",
    "Table",
    "corrupt",
    "match_shape",
    "ood_images",
    "rotate",
]
