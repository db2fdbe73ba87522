"""Calibrate and measure near-duplicate detection on a planted set of real photos.

The set: distinct 224 px crops of the photos bundled with scikit-image, scikit-learn and
matplotlib (non-overlapping grid cells,
flat cells skipped), and for half of them six near duplicates each: a 90 % crop, a 50 % and a
200 % resize, a JPEG re-encode at quality 30, a colour shift of up to ±10 levels per channel
and a 5° rotation. A true pair is two files made from the same crop; every other pair is
distinct (crops of one texture photo are distinct too: they are the hard negatives).

The photos are split in two by index: the threshold is chosen on the even ones (the **tuning**
half) and reported on the odd ones (**held out**) and on all. Rule: the largest threshold
whose pair precision on the tuning half is at least 0.95 (removing a distinct photo costs
more than keeping a duplicate). Precision and recall are over pairs: a pair is found when both
files land in one group.

Thresher embeds the files as a run does (default embedder, L2-normalised) and groups them with
:func:`thresher.selection.near_duplicates.find_near_duplicates`. CleanVision (hash-based near
duplicates, default settings) runs on the same files in a subprocess, from its own folder::

    .venv/bin/pip install --no-deps --target benchmarks/out/cleanvision \\
        cleanvision==0.3.7 ImageHash==4.3.2 PyWavelets==1.9.0
    .venv/bin/python benchmarks/near_duplicates.py      # about 2-4 minutes on 2 busy cores
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CLEANVISION_DIR = ROOT / "benchmarks" / "out" / "cleanvision"
PHOTOS = (
    "astronaut", "camera", "chelsea", "clock", "coffee", "coins", "immunohistochemistry",
    "moon", "retina", "rocket", "cell", "motorcycle_left", "grace_hopper", "china", "flower",
)  # fmt: skip
#: Uniform textures: their crops are distinct files but look alike to an ImageNet embedding
#: (``--textures`` adds them, as hard negatives).
TEXTURES = ("brick", "grass", "gravel", "hubble_deep_field")
CROP = 224
PER_PHOTO = 16
VARIANTS = ("crop90", "resize50", "resize200", "jpeg30", "shift10", "rotate5")
PRECISION_TARGET = 0.95
#: How the default is chosen on the tuning half: "precision" (the largest threshold with
#: precision >= PRECISION_TARGET) or "f1" (the best F1).
RULE = "precision"
GRID = np.round(np.arange(0.005, 0.4001, 0.005), 3)


def photo(name: str) -> NDArray[np.uint8]:
    """One scikit-image photo as (H, W, 3) uint8."""
    import skimage.data

    if name == "motorcycle_left":
        a = np.asarray(skimage.data.stereo_motorcycle()[0])
    elif name in ("china", "flower"):  # scikit-learn's sample photos
        from sklearn.datasets import load_sample_image

        a = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":  # matplotlib's sample photo
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        a = np.asarray(Image.open(path))
    else:
        a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8)


def base_crops(seed: int, photos: tuple[str, ...]) -> list[tuple[int, Image.Image]]:
    """Distinct crops: (photo index, crop), at most PER_PHOTO non-flat grid cells per photo."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, Image.Image]] = []
    for p, name in enumerate(photos):
        a = photo(name)
        cells = [
            (y, x)
            for y in range(0, a.shape[0] - CROP + 1, CROP)
            for x in range(0, a.shape[1] - CROP + 1, CROP)
        ]
        cells = [c for c in cells if a[c[0] : c[0] + CROP, c[1] : c[1] + CROP].std() >= 12]
        for i in rng.permutation(len(cells))[:PER_PHOTO]:
            y, x = cells[i]
            out.append((p, Image.fromarray(a[y : y + CROP, x : x + CROP])))
    return out


def variant(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A near duplicate of ``img`` and the file extension to save it with."""
    w, h = img.size
    if kind == "crop90":
        cw, ch = int(w * 0.9), int(h * 0.9)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return img.crop((x, y, x + cw, y + ch)), "png"
    if kind == "resize50":
        return img.resize((w // 2, h // 2), Image.Resampling.BILINEAR), "png"
    if kind == "resize200":
        return img.resize((w * 2, h * 2), Image.Resampling.BICUBIC), "png"
    if kind == "jpeg30":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=30)
        return Image.open(io.BytesIO(buf.getvalue())), "jpg"
    if kind == "shift10":
        shift = rng.integers(-10, 11, size=3)
        a = np.asarray(img).astype(np.int16) + shift
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), "png"
    if kind == "rotate5":
        return img.rotate(5, resample=Image.Resampling.BILINEAR, expand=False), "png"
    raise ValueError(kind)


def planted_set(
    folder: Path, seed: int, sources: tuple[str, ...] = PHOTOS
) -> tuple[list[str], list[int], list[int]]:
    """Write the set into ``folder``: names, true group per file, source photo per file."""
    rng = np.random.default_rng(seed)
    bases = base_crops(seed, sources)
    names: list[str] = []
    groups: list[int] = []
    photos: list[int] = []
    for g, (p, img) in enumerate(bases):
        name = f"p{p:02d}-g{g:04d}-base.png"
        img.save(folder / name)
        names.append(name)
        groups.append(g)
        photos.append(p)
        if g % 2:  # half of the crops get near duplicates
            continue
        for kind in VARIANTS:
            v, ext = variant(img, kind, rng)
            vname = f"p{p:02d}-g{g:04d}-{kind}.{ext}"
            if ext == "jpg":
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=30)
                (folder / vname).write_bytes(buf.getvalue())
            else:
                v.save(folder / vname)
            names.append(vname)
            groups.append(g)
            photos.append(p)
    return names, groups, photos


def embed(folder: Path, names: list[str]) -> NDArray[np.float32]:
    """Embed the files as a default run does (default embedder, L2-normalised)."""
    from thresher.config.lightly import LightlyConfig
    from thresher.models.inference import embed_files, resolve_embedder
    from thresher.selection.near_duplicates import unit_rows

    model, spec, _ = resolve_embedder(LightlyConfig(), checkpoint=None, enable_training=False)
    emb = embed_files(model, spec, str(folder), names, num_workers=1)
    return unit_rows(emb)


def pairs_of(groups: list[list[int]]) -> set[tuple[int, int]]:
    """Every unordered pair of rows that share a group."""
    return {(a, b) for g in groups for a, b in itertools.combinations(sorted(g), 2)}


def true_pairs(labels: list[int], rows: list[int]) -> set[tuple[int, int]]:
    """Pairs of ``rows`` made from the same crop."""
    by: dict[int, list[int]] = {}
    for r in rows:
        by.setdefault(labels[r], []).append(r)
    return pairs_of(list(by.values()))


def pr(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    """Pair precision, recall and F1."""
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def thresher_groups(emb: NDArray[np.float32], rows: list[int], t: float) -> list[list[int]]:
    """Thresher's groups among ``rows`` at threshold ``t``, as row indices of the full set."""
    from thresher.selection.near_duplicates import find_near_duplicates

    found = find_near_duplicates(emb[rows], t, k=16)
    return [[rows[i] for i in g] for g in found.groups]


CLEANVISION_SCRIPT = """
import json, sys
from cleanvision import Imagelab
lab = Imagelab(data_path=sys.argv[1])
lab.find_issues({"near_duplicates": {}}, n_jobs=1, verbose=False)
sets = lab.info["near_duplicates"]["sets"]
print("JSON" + json.dumps([[str(p) for p in s] for s in sets]))
"""


def cleanvision_groups(folder: Path, names: list[str]) -> list[list[int]] | None:
    """CleanVision's near-duplicate sets, as rows; None when it is not installed."""
    if not (CLEANVISION_DIR / "cleanvision").is_dir():
        print(f"CleanVision not found in {CLEANVISION_DIR} (see the module docstring)")
        return None
    env = {**os.environ, "PYTHONPATH": str(CLEANVISION_DIR), "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", CLEANVISION_SCRIPT, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    sets = json.loads(out.split("JSON", 1)[1])
    row = {n: i for i, n in enumerate(names)}
    return [[row[Path(p).name] for p in s] for s in sets]


def restrict(groups: list[list[int]], rows: list[int]) -> list[list[int]]:
    """The groups cut down to ``rows``."""
    keep = set(rows)
    return [[r for r in g if r in keep] for g in groups]


def main() -> None:
    """Build the set, sweep thresholds, choose the default and compare with CleanVision."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--textures", action="store_true", help="add the texture photos")
    ap.add_argument("--threshold", type=float, help="measure this threshold, not the chosen one")
    args = ap.parse_args()
    used = PHOTOS + (TEXTURES if args.textures else ())
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="thresher-neardup-") as tmp:
        folder = Path(tmp)
        names, labels, photos = planted_set(folder, args.seed, used)
        n_groups = sum(1 for i, n in enumerate(names) if n.endswith("-base.png"))
        print(
            f"planted set: {len(names)} files, {n_groups} distinct crops of {len(used)} photos, "
            f"{len(names) - n_groups} near duplicates ({', '.join(VARIANTS)})"
        )
        tag = "-textures" if args.textures else ""
        cache = ROOT / "benchmarks" / "out" / f"near_duplicates_seed{args.seed}{tag}.npz"
        if cache.exists() and list(np.load(cache)["names"]) == names:
            emb = np.load(cache)["emb"]
            print(f"embeddings from {cache}")
        else:
            emb = embed(folder, names)
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, emb=emb, names=np.array(names), labels=labels, photos=photos)
            print(f"embedded in {time.time() - t0:.0f} s")
        tune = [i for i, p in enumerate(photos) if p % 2 == 0]
        held = [i for i, p in enumerate(photos) if p % 2 == 1]
        every = list(range(len(names)))
        truth = {k: true_pairs(labels, rows) for k, rows in (("tune", tune), ("held", held))}
        truth["all"] = true_pairs(labels, every)
        print("\nthreshold sweep on the tuning half (cosine distance: precision recall F1)")
        strict, best, best_f = float(GRID[0]), float(GRID[0]), -1.0
        for t in GRID:
            p, r, f = pr(pairs_of(thresher_groups(emb, tune, float(t))), truth["tune"])
            if p >= PRECISION_TARGET:
                strict = float(t)
            if f > best_f:
                best, best_f = float(t), f
            if round(t * 1000) % 20 == 0:
                print(f"  {t:.3f}: {p:.3f} {r:.3f} {f:.3f}")
        chosen = strict if RULE == "precision" else best
        rule = f"{RULE} rule"
        if args.threshold is not None:
            chosen, rule = args.threshold, "given"
        print(
            f"\nlargest threshold with tuning precision >= {PRECISION_TARGET}: {strict:.3f}; "
            f"best tuning F1: {best:.3f}\nchosen default ({RULE} rule): {chosen:.3f}"
        )
        cv = cleanvision_groups(folder, names)
        print("\nmethod                       set   precision  recall     F1")
        for key, rows in (("tune", tune), ("held", held), ("all", every)):
            for label, t in ((rule, chosen), ("best F1", best)):
                p, r, f = pr(pairs_of(thresher_groups(emb, rows, t)), truth[key])
                print(f"thresher t={t:.3f} ({label:<14}) {key:<5} {p:9.3f}  {r:6.3f}  {f:.3f}")
            if cv is not None:
                p, r, f = pr(pairs_of(restrict(cv, rows)), truth[key])
                print(f"CleanVision 0.3.7 (hashes)   {key:<5} {p:9.3f}  {r:6.3f}  {f:.3f}")
        print("\nrecall per variant at the default (all photos; thresher / CleanVision):")
        found_t = pairs_of(thresher_groups(emb, every, chosen))
        found_c = pairs_of(cv) if cv is not None else set()
        for kind in VARIANTS:
            vrows = [i for i, n in enumerate(names) if f"-{kind}." in n]
            base = {labels[i]: i for i, n in enumerate(names) if n.endswith("-base.png")}
            want = {tuple(sorted((base[labels[v]], v))) for v in vrows}
            rt = len(want & found_t) / len(want)
            rc = len(want & found_c) / len(want) if cv is not None else float("nan")
            print(f"  {kind:<10} {rt:.3f} / {rc:.3f}")
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
