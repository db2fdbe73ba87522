"""Prefect flows. ``from thresher.flows import curate``."""

import os

# Offline-friendly defaults; set before Prefect is imported. Users' own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "thresher")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from thresher.flows.curate import curate

__all__ = ["curate"]
