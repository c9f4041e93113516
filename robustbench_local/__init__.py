"""robustbench-local: the local benchmark (registries, zoo, protocol, store, runner, CLI)."""

__version__ = "0.2.0"
