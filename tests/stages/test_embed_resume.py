"""The embed stage commits shards as it goes: an interrupted run re-embeds only what is missing.

Planted: 40 images, shards of 8. The first run is interrupted after 20 images (2 full shards =
16 images committed, 4 lost); the re-run must embed exactly the other 24 and give the same
embeddings as an uninterrupted run.
"""

import contextlib

import numpy as np
import pytest

from thresher.config import load_configs
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input


def _make_images(root, n):
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        arr = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / f"img_{i:03d}.png")


class _Counter:
    """A progress factory that counts embedded images and can interrupt like Ctrl-C."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.advanced = []

    @contextlib.contextmanager
    def __call__(self, desc, total, unit="img"):
        def advance(n):
            self.advanced.append(n)
            if self.stop_after is not None and sum(self.advanced) >= self.stop_after:
                raise KeyboardInterrupt

        yield advance


def _upstream(inp, lightly):
    listing = list_input(str(inp), str(lightly))
    checked = corruption_check(listing)
    return listing, deduplicate(checked)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume") / "input"
    _make_images(root, 40)
    return root


def test_interrupted_embed_resumes_with_only_the_missing_images(images, tmp_path):
    cfg = load_configs({"num_processes": 0}, {"n_samples": 3}, {"loader": {"batch_size": 4}})
    lightly = tmp_path / "lightly"
    listing, dedup = _upstream(images, lightly)

    with pytest.raises(KeyboardInterrupt):
        embed(
            listing,
            dedup,
            cfg.worker,
            cfg.lightly,
            progress=_Counter(stop_after=20),
            shard_size=8,
            shard_seconds=1e9,
        )

    again = _Counter()
    resumed = embed(
        listing, dedup, cfg.worker, cfg.lightly, progress=again, shard_size=8, shard_seconds=1e9
    )
    # Interrupted while reporting image 20 (its shard of 16..23 not full): 16 committed. The bar
    # starts at those 16 (one advance), then 24 are embedded anew.
    assert again.advanced[0] == 16 and sum(again.advanced[1:]) == 24
    assert resumed.cached == "16 of 40 images from cache"
    assert not list(lightly.rglob("shards/*.npy")), "shards are removed once joined"

    whole_lightly = tmp_path / "whole"
    listing2, dedup2 = _upstream(images, whole_lightly)
    whole = embed(listing2, dedup2, cfg.worker, cfg.lightly, shard_size=8, shard_seconds=1e9)
    assert resumed.filenames() == whole.filenames()
    np.testing.assert_allclose(resumed.embeddings(), whole.embeddings(), atol=1e-5)

    # A third run reuses the joined output whole.
    assert embed(listing, dedup, cfg.worker, cfg.lightly).cached == "cached"


def test_shards_are_committed_by_time_too(images, tmp_path):
    # shard_seconds=0: every batch (4 images) is committed as soon as it is embedded.
    cfg = load_configs({"num_processes": 0}, {"n_samples": 3}, {"loader": {"batch_size": 4}})
    listing, dedup = _upstream(images, tmp_path / "lightly")
    with pytest.raises(KeyboardInterrupt):
        embed(
            listing,
            dedup,
            cfg.worker,
            cfg.lightly,
            progress=_Counter(stop_after=10),
            shard_size=10_000,
            shard_seconds=0,
        )
    resumed = embed(listing, dedup, cfg.worker, cfg.lightly, shard_size=10_000, shard_seconds=0)
    # The interrupt comes while reporting image 12, after its batch was committed.
    assert resumed.cached == "12 of 40 images from cache"
