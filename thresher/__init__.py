"""thresher: self-hosted data curation for machine learning.

Point it at a folder or bucket of images; it removes corrupt files and exact duplicates,
embeds the rest, selects the N samples most worth labeling and writes a report.

``from thresher import ApiWorkflowClient, DatasetType, DatasourcePurpose`` gives the platform's
client; it is imported on first use, so ``import thresher`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from thresher.client import ApiWorkflowClient
    from thresher.wire import DatasetType, DatasourcePurpose

# name -> module it lives in (imported on first access: httpx and pydantic are not cheap).
_LAZY = {
    "ApiWorkflowClient": "thresher.client",
    "DatasetType": "thresher.wire",
    "DatasourcePurpose": "thresher.wire",
}

__all__ = ["ApiWorkflowClient", "DatasetType", "DatasourcePurpose", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'thresher' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
