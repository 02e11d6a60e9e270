"""Rendering only: terminal, Markdown, HTML and JSON reports of result objects. A plot of the HTML
report is a registered entry (`PlotEntry`, sce_checks/report/plot_catalog.py) returning `Plot`s."""

from sce_checks.report.plot_catalog import Plot, PlotEntry

__all__ = ["Plot", "PlotEntry"]
