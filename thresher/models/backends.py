"""Inference backends: who runs the embedding model's forward pass.

- ``torch``: the PyTorch module itself (the GPU when there is one, else the CPU).
- ``openvino``: the same module converted once to an OpenVINO model with fp32 weights
  (``compress_to_fp16=False``) and run on the CPU with fp32 inference precision. It gives the
  same embeddings as PyTorch (cosine ≥ 0.9999, in practice 1.0000000) about 5× faster on a
  2-core CPU.
- ``auto`` (the default): ``torch`` on a GPU, ``openvino`` on the CPU when the package is
  installed, else ``torch``.

The converted model is cached under ``$THRESHER_HOME/models/openvino/<key>/`` (default
``~/.thresher``), keyed by the model's weights, its input shape, the precision and the
OpenVINO version, so a run pays the conversion (a few seconds) once per model and machine.
OpenVINO's own compiled-blob cache (``CACHE_DIR``) lives beside it.

OpenVINO ships ``openvino-telemetry``, which its model converter would use to send usage
events. thresher never sends anything: :func:`import_openvino` blocks that package before
OpenVINO is imported, so the converter falls back to its built-in no-op stub (the same path it
takes when the package is not installed). Nothing else in OpenVINO's runtime talks to the
network.

Example:
    >>> from thresher.models import zoo
    >>> from thresher.models.backends import make_runner
    >>> model = zoo.create("efficientnet-lite0")
    >>> run = make_runner(model, 224, "openvino")  # doctest: +SKIP
    >>> run(batch).shape  # (B, 3, 224, 224) float32 -> (B, 1280)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from thresher.errors import ConfigError

logger = logging.getLogger("thresher.models")

BackendName = Literal["torch", "openvino"]
#: The values of ``worker_config.embedding_backend``.
BACKEND_CHOICES: tuple[str, ...] = ("auto", "torch", "openvino")

#: One forward pass: a ``(B, 3, H, W)`` float32 batch in, ``(B, D)`` float32 features out.
Runner = Callable[[torch.Tensor], np.ndarray]

_TELEMETRY_PACKAGE = "openvino_telemetry"


def thresher_home() -> Path:
    """``$THRESHER_HOME``, else ``~/.thresher`` (the same rule as the platform's settings)."""
    return Path(os.environ.get("THRESHER_HOME") or Path.home() / ".thresher")


def block_openvino_telemetry() -> None:
    """Make ``import openvino_telemetry`` fail in this process, so nothing is ever sent.

    OpenVINO's converter (``openvino.tools.ovc``) and NNCF both import it inside
    ``try/except ImportError`` and use a no-op stub when it is missing. Setting the module to
    ``None`` in ``sys.modules`` is Python's documented way to make an import raise
    ``ImportError``. A copy imported earlier is replaced too, so later imports see the block.
    """
    for name in list(sys.modules):
        if name == _TELEMETRY_PACKAGE or name.startswith(_TELEMETRY_PACKAGE + "."):
            del sys.modules[name]
    sys.modules[_TELEMETRY_PACKAGE] = None  # type: ignore[assignment]
    # A converter imported before this call holds the real package: point it at the stub.
    stub = sys.modules.get("openvino.tools.ovc.telemetry_stub")
    for holder in ("openvino.tools.ovc.telemetry_utils", "openvino.tools.ovc.convert_impl"):
        mod = sys.modules.get(holder)
        if mod is not None and getattr(mod, "tm", None) is not stub:
            import importlib

            mod.tm = importlib.import_module("openvino.tools.ovc.telemetry_stub")  # type: ignore[attr-defined]


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def import_openvino() -> ModuleType:
    """Import ``openvino`` with its telemetry blocked.

    Raises:
        ConfigError: The package is not installed (names the key and the fix).
    """
    block_openvino_telemetry()
    try:
        import openvino
    except ImportError as e:
        raise ConfigError(
            "worker_config.embedding_backend is 'openvino' but the package openvino is not "
            "installed: pip install openvino, or set embedding_backend to 'torch' or 'auto'."
        ) from e
    module: ModuleType = openvino
    return module


def resolve_backend(requested: str = "auto", device: str = "auto") -> BackendName:
    """The backend that will run: ``auto`` becomes ``torch`` on a GPU, else ``openvino``.

    Args:
        requested: ``worker_config.embedding_backend``: ``auto``, ``torch`` or ``openvino``.
        device: The torch device asked for (``auto``, ``cpu``, ``cuda``...).

    Raises:
        ConfigError: An unknown name, or ``openvino`` asked for but not installed.
    """
    if requested not in BACKEND_CHOICES:
        raise ConfigError(
            f"worker_config.embedding_backend is '{requested}'; use one of "
            f"{', '.join(BACKEND_CHOICES)}."
        )
    if requested == "torch":
        return "torch"
    if requested == "openvino":
        import_openvino()  # a clear error now rather than after the model is built
        return "openvino"
    on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "torch"
    if not openvino_available():
        logger.info("openvino is not installed: embedding with PyTorch on the CPU (slower)")
        return "torch"
    return "openvino"


def plan_cpu(cores: int, backend: BackendName, n_batches: int) -> tuple[int, int]:
    """Decode worker processes and inference threads for ``cores`` usable cores.

    OpenVINO keeps every core busy with the forward pass, which costs about three times the
    decoding of a 256-px JPEG (about 180 against 620 images/s per core), so one decode worker
    per three cores keeps it fed without taking cores from it; at least two (or one per core
    on smaller machines), so that reads from a bucket overlap. A worker whose prefetch queue is
    full sleeps, so a spare one costs memory, not CPU. PyTorch keeps one decode worker per
    core, as before.

    Args:
        cores: Cores this process may use (its affinity mask).
        backend: The resolved backend.
        n_batches: Batches to embed (no more workers than batches).

    Returns:
        ``(decode workers, inference threads)``.
    """
    cores = max(1, cores)
    workers = min(cores, max(2, cores // 3)) if backend == "openvino" else cores
    return max(0, min(workers, n_batches)), cores


def _weights_digest(model: nn.Module) -> str:
    """SHA-256 of the module's class, parameter and buffer names, shapes, dtypes and values."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def openvino_model_key(model: nn.Module, input_size: int, precision: str = "fp32") -> str:
    """The cache key of a converted model: weights, input shape, precision, OpenVINO version."""
    ov = import_openvino()
    h = hashlib.sha256()
    for part in (_weights_digest(model), f"3x{input_size}x{input_size}", precision):
        h.update(part.encode() + b"\0")
    h.update(ov.get_version().encode())
    return h.hexdigest()[:32]


def _convert(model: nn.Module, input_size: int) -> Any:
    ov = import_openvino()
    example = torch.zeros(2, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        # The converter traces with torch.jit, which warns that it is deprecated.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        return ov.convert_model(
            model.eval().cpu(),
            example_input=example,
            input=[ov.PartialShape([-1, 3, input_size, input_size])],
        )


def openvino_model_path(model: nn.Module, input_size: int, cache_root: Path | None = None) -> Path:
    """The converted model's ``model.xml``, converting and caching it on first use.

    Args:
        model: The PyTorch module (eval mode).
        input_size: Side of the square input.
        cache_root: Where converted models live; default ``$THRESHER_HOME/models/openvino``.

    Returns:
        The path of ``model.xml`` (its weights are ``model.bin`` beside it).

    Raises:
        OSError: The cache folder cannot be written.
    """
    ov = import_openvino()
    root = cache_root or thresher_home() / "models" / "openvino"
    final = root / openvino_model_key(model, input_size)
    xml = final / "model.xml"
    if xml.is_file() and (final / "model.bin").is_file():
        return xml
    root.mkdir(parents=True, exist_ok=True)
    logger.info("converting the model to OpenVINO (once; cached in %s)", final)
    converted = _convert(model, input_size)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        try:
            tmp.rename(final)  # atomic: a reader sees the whole model or none
        except OSError:
            if not xml.is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return xml


class OpenVINORunner:
    """A converted model compiled for the CPU; calling it runs one batch.

    A batch is split over the compiled model's parallel infer requests (one per stream under
    the THROUGHPUT hint), so every core works on it.

    Args:
        model: The PyTorch module to convert (or take from the cache).
        input_size: Side of the square input.
        threads: Inference threads (the cores this process may use).
        cache_root: Converted-model cache; default ``$THRESHER_HOME/models/openvino``.
        xml: Run this OpenVINO model file instead (the int8 one, :mod:`thresher.models.int8`).
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: int,
        threads: int,
        cache_root: Path | None = None,
        xml: Path | None = None,
    ) -> None:
        ov = import_openvino()
        root = cache_root or thresher_home() / "models" / "openvino"
        core = ov.Core()
        try:
            source: Any = str(xml or openvino_model_path(model, input_size, root))
            core.set_property({"CACHE_DIR": str(root / "compiled")})
        except OSError as e:
            logger.warning(
                "cannot cache the OpenVINO model under %s (%s): converting in memory; set "
                "THRESHER_HOME to a writable folder to convert once",
                root,
                e,
            )
            source = _convert(model, input_size)
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": max(1, threads),
            # fp32 everywhere (int8 layers stay int8): CPUs with bf16/AMX would otherwise run
            # the float layers in bf16 by default.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = core.compile_model(source, "CPU", config)
        n = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.requests = [self.compiled.create_infer_request() for _ in range(max(1, n))]
        self._ov = ov

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        """``(B, 3, H, W)`` float32 -> ``(B, D)`` float32 features."""
        x = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        chunks = np.array_split(x, min(len(self.requests), len(x)))
        busy = []
        for req, chunk in zip(self.requests, chunks, strict=False):
            req.set_input_tensor(self._ov.Tensor(chunk))
            req.start_async()
            busy.append(req)
        outs = []
        for req in busy:
            req.wait()
            outs.append(np.array(req.get_output_tensor().data, dtype=np.float32))
        out = np.concatenate(outs)
        return out.reshape(len(out), -1)


def torch_runner(model: nn.Module, device: torch.device) -> Runner:
    """A runner for the PyTorch module on ``device`` (moved there, eval mode)."""
    model = model.to(device).eval()

    def run(batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            feats = model(batch.to(device, non_blocking=True)).float()
        return np.asarray(torch.flatten(feats, 1).cpu().numpy(), dtype=np.float32)

    return run


def make_runner(
    model: nn.Module,
    input_size: int,
    backend: BackendName,
    *,
    device: torch.device | None = None,
    threads: int = 1,
    cache_root: Path | None = None,
    model_xml: Path | None = None,
) -> Runner:
    """The forward pass of ``model`` on ``backend``.

    Args:
        model: A zoo model (``(B, 3, H, W)`` -> ``(B, D)``).
        input_size: Side of the square input.
        backend: ``torch`` or ``openvino`` (resolve ``auto`` with :func:`resolve_backend`).
        device: For ``torch``: where to run (default: the CPU).
        threads: For ``openvino``: inference threads.
        cache_root: For ``openvino``: the converted-model cache.
        model_xml: For ``openvino``: run this model file (the int8 one) instead.
    """
    if backend == "openvino":
        return OpenVINORunner(model, input_size, threads, cache_root, xml=model_xml)
    return torch_runner(model, device or torch.device("cpu"))


__all__ = [
    "BACKEND_CHOICES",
    "BackendName",
    "OpenVINORunner",
    "Runner",
    "block_openvino_telemetry",
    "import_openvino",
    "make_runner",
    "openvino_available",
    "openvino_model_key",
    "openvino_model_path",
    "plan_cpu",
    "resolve_backend",
    "thresher_home",
]
