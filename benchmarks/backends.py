"""PyTorch against OpenVINO on the same images, in the same run: images/s and fidelity.

    .venv/bin/python benchmarks/backends.py [--n 512] [--batch 32] [--rounds 2] [--int8]

Makes N varied 256x256 JPEGs (random crops, flips and scales of scikit-image's bundled photos),
then, for the default model (EfficientNet-Lite0, 224 px):

- forward-only: the same decoded batches through PyTorch (eager fp32, as thresher ran it before
  the backends) and through OpenVINO fp32; the rounds alternate so that load from other jobs
  hits both alike;
- embed (``thresher.models.embed_files``: read, decode, resize, forward, normalise) with each
  backend, its decode workers and threads sized by thresher;
- fidelity of OpenVINO against PyTorch: mean and min cosine, and the share of each image's
  10 nearest neighbours kept (overlap@10);
- one-off costs: converting the model (first use on a machine) and loading the cached model;
- with ``--int8``: the int8 model (calibrated on up to 300 of the images), its forward-only
  speed and its fidelity to fp32 on up to 200 others.

The machine is shared and absolute figures swing; read the ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def make_jpegs(root: Path, n: int, size: int = 256, seed: int = 0) -> list[str]:
    from PIL import Image
    from skimage import data

    photos = [getattr(data, name)() for name in PHOTOS]
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 4, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(img[y : y + side, x : x + side]).resize((size, size))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=int(rng.integers(70, 95)))
        name = f"img_{i:05d}.jpg"
        (root / name).write_bytes(buf.getvalue())
        names.append(name)
    return names


def overlap_at_10(a: np.ndarray, b: np.ndarray) -> float:
    def knn(x: np.ndarray) -> np.ndarray:
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :10]

    ka, kb = knn(a), knn(b)
    return float(np.mean([len(set(r) & set(s)) / 10 for r, s in zip(ka, kb, strict=True)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2, help="alternating forward-only rounds")
    p.add_argument("--int8", action="store_true", help="also quantize (needs nncf) and time int8")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="thresher-bench-backends-"))
    os.environ["THRESHER_HOME"] = str(work / "home")  # fresh: the conversion is measured
    try:
        import torch

        from thresher.models import embed_files, zoo
        from thresher.models.backends import OpenVINORunner, torch_runner
        from thresher.models.inference import FileImages, cpu_count, eval_transform

        inp = work / "input"
        inp.mkdir()
        names = make_jpegs(inp, args.n)
        model, spec = zoo.create("efficientnet-lite0"), zoo.spec("efficientnet-lite0")
        print(
            f"{args.n} JPEGs 256x256 from scikit-image photos; efficientnet-lite0 224 px; "
            f"{cpu_count()} cores; torch {torch.__version__}; load average "
            f"{os.getloadavg()[0]:.1f}"
        )

        t0 = time.perf_counter()
        OpenVINORunner(model, spec.input_size, cpu_count())
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ov_run = OpenVINORunner(model, spec.input_size, cpu_count())
        load_s = time.perf_counter() - t0
        print(
            f"one-off: convert + save + compile {convert_s:.2f} s; cached load + compile {load_s:.2f} s"
        )

        ds = FileImages(str(inp), names, eval_transform(spec.input_size, spec.mean, spec.std))
        x = torch.stack([ds[i][0] for i in range(len(names))])
        batches = list(torch.split(x, args.batch))
        pt_run = torch_runner(model, torch.device("cpu"))
        pt_run(batches[0][:2])
        ov_run(batches[0][:2])

        runners = [("torch", pt_run), ("openvino", ov_run)]
        if args.int8:
            from thresher.models.backends import PretrainedOpenVINO, openvino_model_path
            from thresher.models.int8 import quantize_and_measure, split_sample
            from thresher.models.openvino_embed import decode_files

            cal, held = split_sample(len(names))
            size = spec.input_size
            fp32 = PretrainedOpenVINO(
                openvino_model_path(model, size), size, spec.mean, spec.std, spec.dim
            )
            pixels, _ = decode_files(str(inp), names, size)
            t0 = time.perf_counter()
            got = quantize_and_measure(fp32, pixels[cal], pixels[held])
            print(
                f"int8: quantized on {len(cal)} images in {time.perf_counter() - t0:.1f} s "
                f"(once; cached); on {len(held)} held-out images: mean cosine "
                f"{got.mean_cosine:.4f} to fp32, 10-NN overlap {got.overlap10:.3f}  (floor 0.995)"
            )
            int8_run = OpenVINORunner(model, size, cpu_count(), xml=got.model_xml)
            int8_run(batches[0][:2])
            runners.append(("int8", int8_run))
        times = {name: 0.0 for name, _ in runners}
        outs: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, run in runners:
                t0 = time.perf_counter()
                outs[name] = np.concatenate([run(b) for b in batches])
                times[name] += time.perf_counter() - t0
        n_fwd = args.n * args.rounds
        pt_fwd, ov_fwd = n_fwd / times["torch"], n_fwd / times["openvino"]
        print(f"\nforward-only (batch {args.batch}, {args.rounds} alternating rounds):")
        print(f"  torch    {pt_fwd:8.1f} img/s")
        print(f"  openvino {ov_fwd:8.1f} img/s   ratio openvino/torch = {ov_fwd / pt_fwd:.2f}")
        if args.int8:
            i8 = n_fwd / times["int8"]
            print(
                f"  int8     {i8:8.1f} img/s   ratio int8/torch = {i8 / pt_fwd:.2f}, "
                f"int8/openvino fp32 = {i8 / ov_fwd:.2f}"
            )

        emb: dict[str, np.ndarray] = {}
        rate: dict[str, float] = {}
        for name in ("torch", "openvino"):
            t0 = time.perf_counter()
            emb[name] = embed_files(model, spec, str(inp), names, backend=name, batch_size=32)
            rate[name] = args.n / (time.perf_counter() - t0)
        print("\nembed_files end to end (read, decode, resize, forward, normalise; batch 32):")
        print(f"  torch    {rate['torch']:8.1f} img/s")
        print(
            f"  openvino {rate['openvino']:8.1f} img/s   ratio openvino/torch = "
            f"{rate['openvino'] / rate['torch']:.2f}"
        )

        cos = (emb["torch"] * emb["openvino"]).sum(axis=1)
        print(
            f"\nfidelity openvino vs torch on {args.n} images: mean cosine {cos.mean():.7f}, "
            f"min {cos.min():.7f}, overlap@10 {overlap_at_10(emb['torch'], emb['openvino']):.4f}"
            "  (target: cosine >= 0.9999)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
