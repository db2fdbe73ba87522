"""int8 embeddings (``worker_config.embedding_precision: int8``): quantized on the user's images.

The fp32 OpenVINO model is quantized with NNCF's post-training quantization, calibrated on up
to :data:`CALIBRATION_IMAGES` of the run's own images, with the recipe measured to keep the
embeddings closest to fp32: the first convolution stays fp32 and bias correction is the full
one (``fast_bias_correction=False``). The quantized model is cached beside the fp32 one under
``$THRESHER_HOME/models/openvino/``, keyed by the fp32 model's key, the calibration images'
pixels and the NNCF version, so a re-run (or a run over the same data) does not quantize again.

Before the int8 model embeds anything, its fidelity is measured on up to
:data:`HELD_OUT_IMAGES` other images of the same data: the mean cosine between int8 and fp32
embeddings and the share of each image's 10 nearest neighbours that int8 keeps. Under
:data:`FIDELITY_FLOOR` (mean cosine) the run embeds in fp32 instead and says so.

Example:
    >>> plan = prepare_int8(model, spec, "/data/images", names)  # doctest: +SKIP
    >>> plan.precision, plan.note  # doctest: +SKIP
    ('int8', 'int8 (OpenVINO, NNCF): mean cosine 0.9974 to fp32, 10-NN overlap 0.947 ...')
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from thresher.errors import ConfigError
from thresher.models import zoo
from thresher.models.backends import (
    import_openvino,
    openvino_model_key,
    openvino_model_path,
    thresher_home,
)

logger = logging.getLogger("thresher.models")

#: Images the quantization is calibrated on (at most; fewer when the run has fewer).
CALIBRATION_IMAGES = 300
#: Other images the fidelity is measured on (at most).
HELD_OUT_IMAGES = 200
#: Mean cosine to fp32 under which the run falls back to fp32.
FIDELITY_FLOOR = 0.995


@dataclass(frozen=True)
class Int8Plan:
    """What the embed stage runs with ``embedding_precision: int8``.

    Attributes:
        precision: ``"int8"``, or ``"fp32"`` after a fallback.
        model_xml: The quantized model (None after a fallback).
        mean_cosine: Mean cosine of int8 to fp32 embeddings on the held-out images.
        overlap10: Mean share of each held-out image's 10 nearest neighbours kept.
        n_calibration: Images the quantization was calibrated on.
        n_held_out: Images the fidelity was measured on.
        note: One sentence for the report and config.json.
    """

    precision: str
    model_xml: Path | None
    mean_cosine: float
    overlap10: float
    n_calibration: int
    n_held_out: int
    note: str


def _import_nncf() -> Any:
    import_openvino()  # blocks openvino_telemetry, which NNCF would also use
    # Importing NNCF imports torch's C++-extension helper, which warns that it found no CUDA.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
    except ImportError as e:
        raise ConfigError(
            "worker_config.embedding_precision is 'int8', which needs the package nncf to "
            "quantize the model: pip install 'thresher[int8]' (or pip install nncf), or set "
            "embedding_precision to 'fp32'."
        ) from e
    logging.getLogger("nncf").setLevel(logging.ERROR)
    return nncf


def split_sample(n: int) -> tuple[list[int], list[int]]:
    """Indices of the calibration images and of the held-out images, spread over ``n`` files.

    Evenly spaced (deterministic) so that both cover the whole listing. With fewer than
    two images per role, the held-out images are the calibration images (said in the note).
    """
    idx = np.arange(n)
    n_cal = min(CALIBRATION_IMAGES, max(1, n - min(HELD_OUT_IMAGES, n // 2)))
    cal = np.unique(np.linspace(0, n - 1, n_cal).round().astype(int)) if n else idx
    rest = np.setdiff1d(idx, cal)
    if len(rest) < 2:
        return cal.tolist(), cal.tolist()
    held = rest[
        np.unique(
            np.linspace(0, len(rest) - 1, min(HELD_OUT_IMAGES, len(rest))).round().astype(int)
        )
    ]
    return cal.tolist(), held.tolist()


def _load(
    spec: zoo.ModelSpec,
    input_url: str,
    filenames: Sequence[str],
    size: int,
    storage_options: Mapping[str, Any] | None,
) -> np.ndarray:
    from thresher.models.inference import FileImages, eval_transform

    ds = FileImages(
        input_url, filenames, eval_transform(size, spec.mean, spec.std), storage_options, size
    )
    return torch.stack([ds[i][0] for i in range(len(ds))]).numpy()


def overlap_at_10(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each row's 10 nearest neighbours (cosine, among the rows) that ``b`` keeps."""
    k = min(10, len(a) - 1)
    if k < 1:
        return 1.0

    def knn(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :k]

    ka, kb = knn(a), knn(b)
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(ka, kb, strict=True)]))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    out: np.ndarray = (a * b).sum(axis=1) / np.maximum(na, 1e-12)
    return out


def _nncf_version() -> str:
    """NNCF's version, without importing it (that happens in the quantizing process only)."""
    from importlib import metadata

    try:
        return metadata.version("nncf")
    except metadata.PackageNotFoundError as e:
        raise ConfigError(
            "worker_config.embedding_precision is 'int8', which needs the package nncf to "
            "quantize the model: pip install 'thresher[int8]' (or pip install nncf), or set "
            "embedding_precision to 'fp32'."
        ) from e


def _int8_dir(model: nn.Module, input_size: int, calibration: np.ndarray, root: Path) -> Path:
    h = hashlib.sha256(openvino_model_key(model, input_size).encode())
    h.update(np.ascontiguousarray(calibration, dtype=np.float32).tobytes())
    h.update(f"int8-first-conv-fp32-full-bias nncf {_nncf_version()}".encode())
    return root / f"int8-{h.hexdigest()[:32]}"


def quantize_and_measure(
    model: nn.Module,
    input_size: int,
    calibration: np.ndarray,
    held_out: np.ndarray,
    cache_root: Path | None = None,
) -> tuple[Path, float, float]:
    """Quantize on ``calibration`` (or take the cached int8 model) and measure it on ``held_out``.

    Both run in a child process (``python -m thresher.models.int8``): NNCF never enters the
    run's process, and neither does OpenVINO inference before the decode workers fork (a
    parent that ran OpenVINO models and then forked crashed at exit).

    Args:
        model: The fp32 PyTorch module.
        input_size: Side of the square input.
        calibration: ``(N, 3, H, W)`` float32 calibration images.
        held_out: ``(M, 3, H, W)`` float32 images to measure the fidelity on.
        cache_root: The converted-model cache.

    Returns:
        The int8 ``model.xml``, the mean cosine to fp32 and the 10-NN overlap.

    Raises:
        ConfigError: NNCF is not installed.
        RuntimeError: The child failed (with its last output).
    """
    root = cache_root or thresher_home() / "models" / "openvino"
    final = _int8_dir(model, input_size, calibration, root)
    xml = final / "model.xml"
    fp32_xml = openvino_model_path(model, input_size, root)
    cached = xml.is_file() and (final / "model.bin").is_file()
    if not cached:
        logger.info(
            "quantizing the model to int8 on %d of your images (once; cached)", len(calibration)
        )
    work = Path(tempfile.mkdtemp(prefix=".quantize-", dir=root))
    try:
        np.save(work / "calibration.npy", np.ascontiguousarray(calibration, dtype=np.float32))
        np.save(work / "held_out.npy", np.ascontiguousarray(held_out, dtype=np.float32))
        target = xml if cached else work / "model" / "model.xml"
        cmd = [sys.executable, "-m", "thresher.models.int8", str(fp32_xml), str(target)]
        done = subprocess.run([*cmd, str(work)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"quantizing the model to int8 failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout)[-2000:]}"
            )
        fidelity = json.loads((work / "fidelity.json").read_text())
        if not cached:
            try:
                (work / "model").rename(final)  # atomic: a reader sees the whole model or none
            except OSError:
                if not xml.is_file():
                    raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return xml, float(fidelity["mean_cosine"]), float(fidelity["overlap10"])


def _child(fp32_xml: str, int8_xml: str, work_dir: str) -> None:
    """The child process: quantize into ``int8_xml`` unless it exists, then measure it."""
    ov = import_openvino()
    work = Path(work_dir)
    if not Path(int8_xml).is_file():
        nncf = _import_nncf()
        calibration = np.load(work / "calibration.npy")
        fp32 = ov.Core().read_model(fp32_xml)
        convs = [op for op in fp32.get_ordered_ops() if op.get_type_name() == "Convolution"]
        data = nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))])
        # NNCF draws progress bars on stdout; thresher shows its own progress.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(
                fp32,
                data,
                subset_size=len(calibration),
                fast_bias_correction=False,
                ignored_scope=nncf.IgnoredScope(names=[convs[0].get_friendly_name()])
                if convs
                else None,
            )
        Path(int8_xml).parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(quantized, int8_xml, compress_to_fp16=False)
    held = np.load(work / "held_out.npy")
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}
    outs = []
    for path in (fp32_xml, int8_xml):
        compiled = core.compile_model(path, "CPU", config)
        rows = [compiled(b)[0] for b in np.array_split(held, max(1, len(held) // 32))]
        outs.append(np.concatenate(rows).reshape(len(held), -1))
    ref, got = outs
    fidelity = {
        "mean_cosine": float(_cosine(ref, got).mean()),
        "overlap10": overlap_at_10(ref, got),
    }
    (work / "fidelity.json").write_text(json.dumps(fidelity))


def prepare_int8(
    model: nn.Module,
    spec: zoo.ModelSpec,
    input_url: str,
    filenames: Sequence[str],
    *,
    input_size: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    floor: float = FIDELITY_FLOOR,
    cache_root: Path | None = None,
) -> Int8Plan:
    """Quantize (or take from the cache), measure the fidelity, and decide int8 or fp32.

    Args:
        model: The fp32 PyTorch module.
        spec: Its spec.
        input_url: Root the filenames are relative to.
        filenames: The run's images (calibration and held-out images are taken from them).
        input_size: Overrides ``spec.input_size``.
        storage_options: fsspec options.
        floor: Mean cosine under which the run falls back to fp32.
        cache_root: The converted-model cache.

    Returns:
        The plan; its ``note`` states the fidelity and the decision.
    """
    size = input_size or spec.input_size
    cal_idx, held_idx = split_sample(len(filenames))
    calibration = _load(spec, input_url, [filenames[i] for i in cal_idx], size, storage_options)
    held = (
        calibration
        if held_idx == cal_idx
        else _load(spec, input_url, [filenames[i] for i in held_idx], size, storage_options)
    )
    xml, mean_cos, overlap = quantize_and_measure(model, size, calibration, held, cache_root)
    sample = (
        f"{len(held_idx)} held-out images"
        if held_idx != cal_idx
        else f"the {len(cal_idx)} calibration images (too few images to hold some out)"
    )
    measured = (
        f"mean cosine {mean_cos:.4f} to fp32 and 10-NN overlap {overlap:.3f} on {sample}, "
        f"calibrated on {len(cal_idx)} of your images"
    )
    if mean_cos < floor:
        note = (
            f"int8 was asked for but embedded in fp32: int8 reached {measured}, under the "
            f"floor of {floor} (worker_config.embedding_precision)"
        )
        logger.warning("%s", note)
        return Int8Plan("fp32", None, mean_cos, overlap, len(cal_idx), len(held_idx), note)
    note = f"int8 (OpenVINO, NNCF post-training quantization): {measured}"
    logger.info("%s", note)
    return Int8Plan("int8", xml, mean_cos, overlap, len(cal_idx), len(held_idx), note)


__all__ = [
    "CALIBRATION_IMAGES",
    "FIDELITY_FLOOR",
    "HELD_OUT_IMAGES",
    "Int8Plan",
    "overlap_at_10",
    "prepare_int8",
    "quantize_and_measure",
    "split_sample",
]


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3])
