"""The selection engine: pick the samples most worth labeling.

Pure numpy/torch/faiss. :func:`select` takes the user's ``selection_config`` and arrays;
:func:`gather_inputs` reads what a config needs from the LIGHTLY and INPUT locations;
:func:`report_distributions` summarises the inputs for the report.

Example:
    >>> import numpy as np
    >>> from thresher.selection import select
    >>> x = np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)
    >>> picks = select({"n_samples": 10}, embeddings=x)
"""

from thresher.selection.api import parse_selection_config, select
from thresher.selection.gather import gather_inputs
from thresher.selection.knn import knn
from thresher.selection.registry import REGISTRY
from thresher.selection.report import report_distributions

__all__ = [
    "REGISTRY",
    "gather_inputs",
    "knn",
    "parse_selection_config",
    "report_distributions",
    "select",
]
