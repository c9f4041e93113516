"""Reports: read a run's results store and draw figures; never runs a model."""
