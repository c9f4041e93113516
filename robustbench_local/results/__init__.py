"""A run's results: the SQLite store, the results schema, the summary, the
gradient-masking verdicts, provenance pins and the run-folder lock.

Reads and writes stored numbers only: imports neither ``bench`` nor ``zoo`` (so
``reports``, which imports this package alone, never runs a model). See
docs/architecture.md.
"""
