"""Reports: read a run's results store and write ``report.html``; never runs a model."""

from reports.build import build_report

__all__ = ["build_report"]
