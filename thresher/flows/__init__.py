"""Prefect flows. ``from thresher.flows import curate``."""

import thresher.prefect_defaults  # noqa: F401  (before Prefect: its settings' defaults)

# isort: split
from thresher.flows.curate import curate

__all__ = ["curate"]
