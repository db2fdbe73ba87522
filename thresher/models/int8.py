"""int8 embeddings (``worker_config.embedding_precision: int8``): quantized on the user's images.

The converted fp32 OpenVINO model (:class:`~thresher.models.backends.PretrainedOpenVINO`: the
pretrained default model's noted file, or any other model's converted one) is quantized with
NNCF's post-training quantization, calibrated on up to :data:`CALIBRATION_IMAGES` of the
run's own images, with the recipe measured to keep the embeddings closest to fp32: the first
convolution stays fp32 and bias correction is the full one (``fast_bias_correction=False``).

The images are read as the run embeds them: decoded to uint8 pixels with Pillow
(:func:`thresher.models.openvino_embed.decode_files`) and scaled and normalised as the compiled
model does (``(x - 255 mean) / (255 std)``). Nothing here imports PyTorch; NNCF runs in a child
process (``python -m thresher.models.int8``), and so does the fidelity measurement.

The quantized model is cached under ``$THRESHER_HOME/models/openvino/int8-<key>/``, keyed by
the fp32 model's key, the calibration pixels, the NNCF version and the recipe, so a re-run (or
a run over the same data) does not quantize again. Its fidelity is measured on up to
:data:`HELD_OUT_IMAGES` other images of the same data (the mean cosine between int8 and fp32
embeddings and the share of each image's 10 nearest neighbours that int8 keeps) and cached in
that folder too, keyed by the held-out pixels: a re-run on the same data neither quantizes nor
measures, and its note says the figure is the cached measurement. Under
:data:`FIDELITY_FLOOR` (mean cosine) the run embeds in fp32 instead and says so.

Example:
    >>> plan = prepare_int8(fp32, "/data/images", names)  # doctest: +SKIP
    >>> plan.precision, plan.note  # doctest: +SKIP
    ('int8', 'int8 (OpenVINO, NNCF post-training quantization): mean cosine 0.9974 ...')
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thresher.errors import ConfigError
from thresher.models.backends import (
    PretrainedOpenVINO,
    import_openvino,
    thresher_home,
    vector_instructions,
)

logger = logging.getLogger("thresher.models")

#: Images the quantization is calibrated on (at most; fewer when the run has fewer).
CALIBRATION_IMAGES = 300
#: Other images the fidelity is measured on (at most).
HELD_OUT_IMAGES = 200
#: Mean cosine to fp32 under which the run falls back to fp32.
FIDELITY_FLOOR = 0.995
#: The quantization recipe, part of the cache key (a new recipe quantizes again).
RECIPE = "int8-first-conv-fp32-full-bias"

_NO_NNCF = (
    "worker_config.embedding_precision is 'int8', which needs the package nncf to quantize "
    "the model: pip install 'thresher[int8]' (or pip install nncf), or set "
    "embedding_precision to 'fp32'."
)


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
        cached: The figures are the measurement cached with the int8 model (nothing was
            quantized or measured in this run).
    """

    precision: str
    model_xml: Path | None
    mean_cosine: float
    overlap10: float
    n_calibration: int
    n_held_out: int
    note: str
    cached: bool = False


@dataclass(frozen=True)
class Quantized:
    """The int8 model and its measured fidelity (:func:`quantize_and_measure`).

    Attributes:
        model_xml: The quantized ``model.xml``.
        mean_cosine: Mean cosine of int8 to fp32 embeddings on the held-out pixels.
        overlap10: Mean share of each held-out image's 10 nearest neighbours kept.
        cached: Both came from the cache (no child process ran).
    """

    model_xml: Path
    mean_cosine: float
    overlap10: float
    cached: bool


def _import_nncf() -> Any:
    import_openvino()  # blocks openvino_telemetry, which NNCF would also use
    # Importing NNCF imports torch's C++-extension helper, which warns that it found no CUDA.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
    except ImportError as e:
        raise ConfigError(_NO_NNCF) from e
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
        raise ConfigError(_NO_NNCF) from e


def _digest(pixels: np.ndarray) -> str:
    h = hashlib.sha256(f"{pixels.shape}".encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _int8_dir(fp32: PretrainedOpenVINO, calibration: np.ndarray, root: Path) -> Path:
    """The int8 model's folder, keyed by what makes the int8 model.

    The fp32 model's key, the calibration pixels (and how they are normalised), the NNCF
    version and the recipe.
    """
    h = hashlib.sha256(fp32.xml.parent.name.encode() + b"\0")
    h.update(json.dumps([list(fp32.mean), list(fp32.std)]).encode())
    h.update(_digest(calibration).encode())
    h.update(f"{RECIPE} nncf {_nncf_version()}".encode())
    return root / f"int8-{h.hexdigest()[:32]}"


def normalised(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 ``(N, 3, H, W)`` pixels as the compiled model sees them: ``(x - 255 m) / (255 s)``.

    The arithmetic of :class:`~thresher.models.backends.OpenVINORunner`'s pixel input, in
    float32 (the fp32 model's input, which NNCF calibrates on).
    """
    m = np.asarray([255.0 * float(v) for v in mean], np.float32).reshape(1, -1, 1, 1)
    s = np.asarray([255.0 * float(v) for v in std], np.float32).reshape(1, -1, 1, 1)
    out: np.ndarray = (pixels.astype(np.float32) - m) / s
    return out


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the whole file or none


def quantize_and_measure(
    fp32: PretrainedOpenVINO,
    calibration: np.ndarray,
    held_out: np.ndarray,
    cache_root: Path | None = None,
) -> Quantized:
    """Quantize on ``calibration`` (or take the cached int8 model) and measure it on ``held_out``.

    Both run in a child process (``python -m thresher.models.int8``): NNCF never enters the
    run's process. A measurement cached with the int8 model for the same held-out pixels is
    taken as it is: no child process runs.

    Args:
        fp32: The converted fp32 model and its input normalisation.
        calibration: ``(N, 3, H, W)`` uint8 calibration pixels.
        held_out: ``(M, 3, H, W)`` uint8 pixels to measure the fidelity on.
        cache_root: The converted-model cache; default ``$THRESHER_HOME/models/openvino``.

    Returns:
        The int8 model, its fidelity and whether both came from the cache.

    Raises:
        ConfigError: NNCF is not installed.
        RuntimeError: The child failed (with its last output).
    """
    root = cache_root or thresher_home() / "models" / "openvino"
    final = _int8_dir(fp32, calibration, root)
    xml = final / "model.xml"
    measured = final / f"fidelity-{_digest(held_out)[:32]}.json"
    cached = xml.is_file() and (final / "model.bin").is_file()
    if cached and measured.is_file():
        try:
            doc = json.loads(measured.read_text(encoding="utf-8"))
            return Quantized(xml, float(doc["mean_cosine"]), float(doc["overlap10"]), True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not one we wrote: measured again below
    if not cached:
        logger.info(
            "quantizing the model to int8 on %d of your images (once; cached)", len(calibration)
        )
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".quantize-", dir=root))
    try:
        np.save(work / "calibration.npy", np.ascontiguousarray(calibration, dtype=np.uint8))
        np.save(work / "held_out.npy", np.ascontiguousarray(held_out, dtype=np.uint8))
        (work / "input.json").write_text(
            json.dumps({"mean": list(fp32.mean), "std": list(fp32.std), "root": str(root)})
        )
        target = xml if cached else work / "model" / "model.xml"
        cmd = [sys.executable, "-m", "thresher.models.int8", str(fp32.xml), str(target)]
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
        _write_json(measured, fidelity)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Quantized(xml, float(fidelity["mean_cosine"]), float(fidelity["overlap10"]), False)


def _child(fp32_xml: str, int8_xml: str, work_dir: str) -> None:
    """The child process: quantize into ``int8_xml`` unless it exists, then measure it."""
    from thresher.models.backends import OpenVINORunner, cpu_count

    ov = import_openvino()
    work = Path(work_dir)
    given = json.loads((work / "input.json").read_text())
    mean, std = given["mean"], given["std"]
    if not Path(int8_xml).is_file():
        nncf = _import_nncf()
        calibration = np.load(work / "calibration.npy")
        fp32 = ov.Core().read_model(fp32_xml)
        convs = [op for op in fp32.get_ordered_ops() if op.get_type_name() == "Convolution"]
        data = nncf.Dataset(
            [calibration[i : i + 1] for i in range(len(calibration))],
            lambda x: normalised(x, mean, std),
        )
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
    outs = []
    for path in (fp32_xml, int8_xml):  # as the run embeds: uint8 pixels, normalised by OpenVINO
        run = OpenVINORunner(
            None, held.shape[-1], cpu_count(), Path(given["root"]), Path(path), (mean, std)
        )
        outs.append(np.concatenate([run(b) for b in np.array_split(held, -(-len(held) // 32))]))
    ref, got = outs
    fidelity = {
        "mean_cosine": float(_cosine(ref, got).mean()),
        "overlap10": overlap_at_10(ref, got),
    }
    (work / "fidelity.json").write_text(json.dumps(fidelity))


def prepare_int8(
    fp32: PretrainedOpenVINO,
    input_url: str,
    filenames: Sequence[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    num_workers: int = -1,
    floor: float = FIDELITY_FLOOR,
    cache_root: Path | None = None,
) -> Int8Plan:
    """Quantize (or take from the cache), measure the fidelity, and decide int8 or fp32.

    Args:
        fp32: The converted fp32 model (``xml``, input size, normalisation).
        input_url: Root the filenames are relative to.
        filenames: The run's images (calibration and held-out images are taken from them).
        storage_options: fsspec options.
        num_workers: Decode worker processes for the calibration and held-out images
            (-1: one per core; 0: decode in this process).
        floor: Mean cosine under which the run falls back to fp32.
        cache_root: The converted-model cache.

    Returns:
        The plan; its ``note`` states the fidelity and the decision.

    Raises:
        ConfigError: NNCF is not installed.
        RuntimeError: Quantizing or measuring failed.
    """
    from thresher.models.openvino_embed import decode_files

    _nncf_version()  # a clear error before any image is read
    cal_idx, held_idx = split_sample(len(filenames))
    picked = cal_idx if held_idx == cal_idx else cal_idx + held_idx
    pixels, broken = decode_files(
        input_url,
        [filenames[i] for i in picked],
        fp32.input_size,
        storage_options=storage_options,
        num_workers=num_workers,
    )
    bad = {i for i, _ in broken}  # unreadable since the corruption check: left out
    calibration = pixels[[i for i in range(len(cal_idx)) if i not in bad]]
    held = (
        calibration
        if held_idx == cal_idx
        else pixels[[i for i in range(len(cal_idx), len(picked)) if i not in bad]]
    )
    got = quantize_and_measure(fp32, calibration, held, cache_root)
    sample = (
        f"{len(held)} held-out images"
        if held_idx != cal_idx
        else f"the {len(calibration)} calibration images (too few images to hold some out)"
    )
    measured = (
        f"mean cosine {got.mean_cosine:.4f} to fp32 and 10-NN overlap {got.overlap10:.3f} on "
        f"{sample}, calibrated on {len(calibration)} of your images"
    )
    if got.cached:
        measured += " (the measurement cached with the int8 model for these images)"
    n_cal, n_held = len(calibration), len(held)
    if got.mean_cosine < floor:
        note = (
            f"int8 was asked for but embedded in fp32: int8 reached {measured}, under the "
            f"floor of {floor} (worker_config.embedding_precision)"
        )
        if "VNNI" not in vector_instructions():
            note += "; this CPU has no VNNI instructions, without which int8 loses precision"
        logger.warning("%s", note)
        return Int8Plan(
            "fp32", None, got.mean_cosine, got.overlap10, n_cal, n_held, note, got.cached
        )
    note = f"int8 (OpenVINO, NNCF post-training quantization): {measured}"
    logger.info("%s", note)
    return Int8Plan(
        "int8", got.model_xml, got.mean_cosine, got.overlap10, n_cal, n_held, note, got.cached
    )


__all__ = [
    "CALIBRATION_IMAGES",
    "FIDELITY_FLOOR",
    "HELD_OUT_IMAGES",
    "RECIPE",
    "Int8Plan",
    "Quantized",
    "normalised",
    "overlap_at_10",
    "prepare_int8",
    "quantize_and_measure",
    "split_sample",
]


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3])
