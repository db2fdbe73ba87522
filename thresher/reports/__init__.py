"""The run report: report.json, report.pdf and plots/*.png.

Example:
    >>> from thresher.reports import ReportInputs, build_report
    >>> report = build_report(inputs, out_dir)  # doctest: +SKIP

The names are imported on first use, so that ``python -m thresher.reports.umap_2d`` (the UMAP
worker process) does not pay for matplotlib, fpdf and the selection engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thresher.reports.build import ReportInputs, build_report

__all__ = ["ReportInputs", "build_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from thresher.reports import build

        return getattr(build, name)
    raise AttributeError(f"module 'thresher.reports' has no attribute {name!r}")
