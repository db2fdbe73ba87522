"""A small example dataset with planted defects, made from real images shipped in scikit-learn.

Used by ``thresher example`` (the README's first command) and by the tests. The answer is known by
construction: which files are corrupt, which are exact duplicates of which, and which visual
cluster each image belongs to.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# One colour per cluster, so clusters are far apart for any ImageNet model.
_PALETTE = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (230, 200, 30), (160, 50, 200),
            (30, 200, 200), (240, 120, 20), (120, 120, 120), (250, 250, 250), (90, 60, 30)]


@dataclass
class ExampleDataset:
    root: Path
    clusters: dict[str, int] = field(default_factory=dict)  # filename -> cluster id
    duplicates: dict[str, str] = field(default_factory=dict)  # duplicate -> original
    corrupt: dict[str, str] = field(default_factory=dict)  # filename -> what is wrong
    n_clusters: int = 0

    @property
    def all_files(self) -> list[str]:
        return sorted([*self.clusters, *self.duplicates, *self.corrupt])


def _cluster_image(cluster: int, variant: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A digit from scikit-learn's digits on the cluster's colour, with per-image jitter."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pool = np.flatnonzero(digits.target == cluster % 10)
    glyph = digits.images[pool[variant % len(pool)]] / 16.0  # 8x8 in [0, 1]
    big = np.kron(glyph, np.ones((size // 8, size // 8)))
    base = np.array(_PALETTE[cluster % len(_PALETTE)], dtype=np.float64)
    img = (base[None, None, :] * (0.35 + 0.65 * big[..., None]))
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_example_dataset(
    root: str | Path,
    *,
    n_clusters: int = 5,
    per_cluster: int = 12,
    n_duplicates: int = 4,
    size: int = 64,
    seed: int = 0,
) -> ExampleDataset:
    """Write an example image folder with planted corrupt files and exact duplicates.

    Layout: ``cluster_<k>/img_<i>.png`` and ``.jpg`` (nested folders, mixed case extensions),
    ``dups/`` with byte-identical copies, and ``broken/`` with one file per kind of corruption:
    zero bytes, truncated PNG, text named .jpg, and a decompression bomb header.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    ds = ExampleDataset(root=root, n_clusters=n_clusters)
    root.mkdir(parents=True, exist_ok=True)
    originals = []
    for k in range(n_clusters):
        for i in range(per_cluster):
            ext = ".PNG" if i % 5 == 4 else (".jpg" if i % 2 else ".png")
            name = f"cluster_{k}/img_{i:03d}{ext}"
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            img = _cluster_image(k, i, size, rng)
            img.save(path, format="JPEG" if ext == ".jpg" else "PNG", quality=95)
            ds.clusters[name] = k
            originals.append(name)
    (root / "dups").mkdir(exist_ok=True)
    for j in range(n_duplicates):
        src = originals[(j * 7) % len(originals)]
        name = f"dups/copy_{j}{Path(src).suffix}"
        (root / name).write_bytes((root / src).read_bytes())
        ds.duplicates[name] = src
    broken = root / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "empty.png").write_bytes(b"")
    ds.corrupt["broken/empty.png"] = "empty file"
    buf = io.BytesIO()
    _cluster_image(0, 0, size, rng).save(buf, format="PNG")
    (broken / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    ds.corrupt["broken/truncated.png"] = "truncated"
    (broken / "notes.jpg").write_text("this is not an image\n")
    ds.corrupt["broken/notes.jpg"] = "not an image"
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # 400 Mpx, tiny file
    (broken / "bomb.png").write_bytes(bomb.getvalue())
    ds.corrupt["broken/bomb.png"] = "decompression bomb"
    (root / "README.txt").write_text("not media: ignored by the listing\n")
    return ds
