"""robustbench-local: the local benchmark (registries, zoo, protocol, store, runner, CLI)."""
