"""The run report: Plotly figures of what the analysis found, on one offline HTML page."""

from grokscope.report.html import build_report

__all__ = ["build_report"]
