"""thresher's defaults for Prefect's settings, set in the environment when this is imported.

Prefect reads its settings from the environment once, when it is first imported, so every
thresher module that imports Prefect (``thresher.flows``, ``thresher.tasks``, the platform
worker's run process) imports this module first. Users' own settings win (``setdefault``).
This module never imports Prefect.
"""

from __future__ import annotations

import os

#: The settings and thresher's values: no analytics calls (the machines may have no internet),
#: thresher's log lines in Prefect's, and 90 s for Prefect's ephemeral API to start (its 20 s
#: default runs out on a busy 2-core machine, and the run fails before its first stage).
OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "thresher",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
