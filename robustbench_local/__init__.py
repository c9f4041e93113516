"""robustbench-local: the benchmark behind ``rbl``.

Subpackages (arrows one way, see docs/architecture.md): ``zoo`` (datasets, models,
training, checkpoints), ``bench`` (config, runner, protocol, attack registry, checks'
measurements), ``results`` (store, schema, summary, masking verdicts); ``cli`` is the
``rbl`` command and the only importer of ``reports``.
"""

__version__ = "0.2.0"
