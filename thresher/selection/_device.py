"""Whether a GPU is usable, asked without importing torch where there is clearly none."""

from __future__ import annotations

import importlib.util
import os
import sys


def cuda_available() -> bool:
    """Whether torch sees a CUDA device.

    Importing a CUDA build of torch costs about 650 MB of resident memory, which matters for
    the memory-bounded paths; the NVIDIA device files tell first whether asking is worth it.
    """
    if "torch" not in sys.modules and not any(
        os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")
    ):
        return False
    if importlib.util.find_spec("torch") is None:  # pragma: no cover
        return False
    import torch

    return bool(torch.cuda.is_available())
