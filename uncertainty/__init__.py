"""Uncertainty heads (deep ensembles, MC dropout) and metrics."""
