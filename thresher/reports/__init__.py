"""The run report: report.json, report.pdf and plots/*.png.

Example:
    >>> from thresher.reports import ReportInputs, build_report
    >>> report = build_report(inputs, out_dir)  # doctest: +SKIP
"""

from thresher.reports.build import ReportInputs, build_report

__all__ = ["ReportInputs", "build_report"]
