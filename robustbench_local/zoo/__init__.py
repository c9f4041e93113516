"""The model zoo: datasets, architectures, training recipes, the checkpoint cache and
users' own models (factories and safe checkpoints).

May import ``attacks`` and ``uncertainty`` (adversarial training, MC dropout models),
``robustbench_local.registry`` and ``robustbench_local.devices``; never ``bench``,
``results``, the CLI or ``reports``. See docs/architecture.md.
"""
