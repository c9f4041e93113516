"""Reports: read a run's results store, draw figures and write ``report.html``.

Reports never run a model: everything they show comes from ``results.sqlite``.

    from reports import build_leaderboard, build_report
    build_report(Path("runs/digits-default-20261123-120000"))   # -> the summary as written
    build_leaderboard(Path("runs"))                              # -> runs/leaderboard.html
    console_report(summary)          # the same headline as tables for a terminal (rbl run)
"""

from reports.build import build_report
from reports.console import ConsoleReport, console_report
from reports.leaderboard import build_leaderboard

__all__ = ["ConsoleReport", "build_leaderboard", "build_report", "console_report"]
