"""The benchmark: config, planning and running the (model, attack, eps) jobs, the
evaluation protocol, the attack registry, the adaptive attack, the gradient-masking
diagnostics and the executors.

May import ``zoo``, ``results``, ``attacks`` and ``uncertainty``; never the CLI or
``reports``. See docs/architecture.md.
"""
