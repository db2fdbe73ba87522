"""A small example dataset with planted defects, made from real photos shipped in scikit-image.

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

# One real photo per cluster (bundled in scikit-image, no download): far apart for any ImageNet
# model, while the jittered views of one photo stay close together.
_PHOTOS = [
    "chelsea",
    "coffee",
    "rocket",
    "astronaut",
    "immunohistochemistry",
    "colorwheel",
    "hubble_deep_field",
    "brick",
    "coins",
    "clock",
]


@dataclass
class ExampleDataset:
    """The example dataset written to ``root``, with what was planted where."""

    root: Path
    clusters: dict[str, int] = field(default_factory=dict)  # filename -> cluster id
    duplicates: dict[str, str] = field(default_factory=dict)  # duplicate -> original
    corrupt: dict[str, str] = field(default_factory=dict)  # filename -> what is wrong
    n_clusters: int = 0

    @property
    def all_files(self) -> list[str]:
        """Every file written, sorted, relative to ``root``."""
        return sorted([*self.clusters, *self.duplicates, *self.corrupt])


def _cluster_image(cluster: int, variant: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A random crop (80-100% of each side) of the cluster's photo, with brightness and noise."""
    import skimage.data

    photo = np.asarray(getattr(skimage.data, _PHOTOS[cluster % len(_PHOTOS)])(), dtype=np.float64)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    h, w = photo.shape[:2]
    ch, cw = int(h * rng.uniform(0.8, 1.0)), int(w * rng.uniform(0.8, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[y : y + ch, x : x + cw, :3] * rng.uniform(0.9, 1.1)
    crop += rng.normal(0, 3, crop.shape)
    img = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
    return img.resize((size, size), Image.Resampling.BILINEAR)


def make_example_dataset(
    root: str | Path,
    *,
    n_clusters: int = 5,
    per_cluster: int = 12,
    n_duplicates: int = 4,
    size: int = 96,
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
