"""Where the model looks: attribution maps, their rank similarity, and latent concept directions.

    from robustbench_local.explain import attribution_maps, attribution_similarity
    clean = attribution_maps(model, x, y, method="saliency")       # (B, H, W), >= 0
    adv = attribution_maps(model, x_adv, y, method="saliency")
    rho = attribution_similarity(clean, adv)                        # (B,) Spearman, 1 = same

    from robustbench_local.explain import (
        concept_directions, concept_shift, penultimate_features, top_exemplars,
    )
    feats = penultimate_features(model, x)                          # (N, D)
    dirs = concept_directions(feats, k=8)                           # (k, D) orthonormal
    shift = concept_shift(feats, penultimate_features(model, x_adv), dirs)  # (N,) in [0, 1]

Everything here is a pure function of a model and tensors: it runs the model in eval mode
(each module's training flag restored after), takes gradients of the input only and leaves no
``.grad`` on parameters, as the attacks do. This package may import ``attacks``,
``uncertainty``, torch and captum, but nothing of ``robustbench_local.bench``,
``robustbench_local.results``, ``robustbench_local.cli`` or ``reports``: the benchmark composes
it, never the other way round (docs/architecture.md).
"""

from robustbench_local.explain.attributions import Method, attribution_maps, integrated_gradients
from robustbench_local.explain.concepts import (
    concept_directions,
    concept_shift,
    penultimate_features,
    top_exemplars,
)
from robustbench_local.explain.similarity import attribution_similarity

__all__ = [
    "Method",
    "attribution_maps",
    "attribution_similarity",
    "concept_directions",
    "concept_shift",
    "integrated_gradients",
    "penultimate_features",
    "top_exemplars",
]
