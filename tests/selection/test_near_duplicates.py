"""Near duplicates: found in embedding space, scaled without an N x N matrix, removed honestly.

The planted run: real photos from scikit-image, each with near-identical copies (a 200 %
resize and a small colour shift, the edits the default embedder barely moves), embedded by the
real default model through the real stages; distinct photos must stay apart.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from thresher.config import WorkerConfig, load_configs
from thresher.errors import ConfigError
from thresher.selection.near_duplicates import find_near_duplicates
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input
from thresher.stages.near_duplicates import near_duplicates, refuse_near_duplicate_removal
from thresher.stages.select import select
from thresher.stages.write_results import write_results

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "clock")


def _photo(name: str) -> Image.Image:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(a[..., :3]).astype(np.uint8))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """8 photos; the first 4 each with a 2x resize and a colour-shifted copy (12 files)."""
    root = tmp_path_factory.mktemp("near") / "input"
    root.mkdir()
    groups = {}
    for i, name in enumerate(PHOTOS):
        img = _photo(name)
        base = f"{i}-{name}-0.png"  # sorts first: the kept one
        img.save(root / base)
        if i < 4:
            big = f"{i}-{name}-1-resized.png"
            img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC).save(root / big)
            shifted = f"{i}-{name}-2-shifted.png"
            arr = np.asarray(img).astype(np.int16) + np.array([6, -4, 3], np.int16)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(root / shifted)
            groups[base] = {big, shifted}
    return root, groups


def _upstream(inp, lightly, worker=None):
    cfg = load_configs({"num_processes": 0, **(worker or {})}, {"n_samples": 3}, {})
    listing = list_input(str(inp), str(lightly))
    checked = corruption_check(listing)
    dedup = deduplicate(checked)
    return cfg, listing, checked, dedup, embed(listing, dedup, cfg.worker, cfg.lightly)


def test_planted_groups_are_found_and_distinct_photos_are_not_grouped(planted, tmp_path):
    root, groups = planted
    cfg, _, _, dedup, emb = _upstream(root, tmp_path / "lightly")
    near = near_duplicates(emb, dedup, threshold=cfg.worker.near_duplicate_threshold)
    found = {g[0]: set(g[1:]) for g in near.document()["groups"]}
    assert found == groups
    assert near.n_near_duplicates == 8 and not near.removed
    assert near.embedded is emb  # off: selection sees every row


def test_removal_before_selection_keeps_the_accounting_and_lists_them(planted, tmp_path):
    root, groups = planted
    lightly = tmp_path / "lightly"
    cfg, listing, checked, dedup, emb = _upstream(root, lightly, {"remove_near_duplicates": True})
    near = near_duplicates(emb, dedup, threshold=cfg.worker.near_duplicate_threshold, remove=True)
    assert near.removed and near.embedded.n == 8 and near.deduplicated.n_duplicate == 8
    sel = select(listing, near.embedded, cfg.selection, seed=0)
    out = write_results(
        "r1",
        config={},
        listing=listing,
        checked=checked,
        deduplicated=near.deduplicated,
        embedded=near.embedded,
        selected=sel,
        near=near,
    )
    s = out.sizes
    assert s["n_input"] == 16 and s["n_duplicate"] == 8 and s["n_selected"] == 3
    assert s["n_selected"] + s["n_removed"] + s["n_duplicate"] + s["n_corrupt"] == 16
    run = lightly / ".lightly" / "runs" / "r1"
    listed = set((run / "filenames" / "duplicate.txt").read_text().split())
    assert listed == set().union(*groups.values())
    picked = set((run / "filenames" / "selected.txt").read_text().split())
    assert not picked & listed  # a removed near duplicate is never selected
    doc = json.loads((run / "near_duplicates.json").read_text())
    assert doc["removed"] and {g[0] for g in doc["groups"]} == set(groups)
    dups = json.loads((run / "duplicates.json").read_text())["duplicates"]
    assert all(dups[d] == k for k, ds in groups.items() for d in ds)
    # served from the store the second time, with the same counts
    again = near_duplicates(emb, dedup, threshold=cfg.worker.near_duplicate_threshold, remove=True)
    assert again.cached == "cached" and again.deduplicated == near.deduplicated


def _planted_vectors(n: int, d: int, n_pairs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = rng.choice(n, size=n_pairs, replace=False)
    dst = np.arange(n, n + n_pairs)
    noise = 0.02 * rng.standard_normal((n_pairs, d)).astype(np.float32)
    y = x[src] + noise
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return np.concatenate([x, y]), {(int(a), int(b)) for a, b in zip(src, dst, strict=True)}


def test_scales_without_an_n_by_n_matrix():
    x, pairs = _planted_vectors(50_000, 64, 200)
    tracemalloc.start()
    found = find_near_duplicates(x, 0.05)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 50,200 x 50,200 float32 would be 10 GB; the embeddings themselves are 12.9 MB
    assert peak < 150e6, peak
    assert {(g[0], g[1]) for g in found.groups} == pairs
    assert all(len(g) == 2 for g in found.groups)


def test_approximate_search_finds_the_same_groups_and_length_does_not_matter():
    x, pairs = _planted_vectors(6_000, 32, 50, seed=1)
    exact = find_near_duplicates(x, 0.05)
    approx = find_near_duplicates(x, 0.05, exact_max=1_000)  # IVF index
    assert exact.groups == approx.groups
    assert {(g[0], g[1]) for g in exact.groups} == pairs
    scaled = x * np.random.default_rng(2).uniform(0.1, 50, (len(x), 1)).astype(np.float32)
    assert find_near_duplicates(scaled, 0.05).groups == exact.groups  # normalize_embeddings off


def test_a_chain_does_not_pull_far_rows_into_the_kept_rows_group():
    # 0~1 and 1~2 are near duplicates, 0 and 2 are not: single linkage made one group of the
    # three (on real data it chained a boot to a sandal); a star keeps 2 out of 0's group.
    x = np.array([[1.0, 0.0], [0.995, 0.1], [0.98, 0.2], [0.0, 1.0]], np.float32)
    found = find_near_duplicates(x, 0.01, backend="numpy")
    assert found.groups == [[0, 1]]
    assert all(d < 0.01 for ds in found.distances for d in ds)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert 1 - u[0] @ u[2] > 0.01 and 1 - u[1] @ u[2] < 0.01  # the chain is really there


def test_bad_threshold_and_bad_combinations_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        find_near_duplicates(np.eye(3, dtype=np.float32), 2.5)
    with pytest.raises(ConfigError, match="selected_sequence_length"):
        refuse_near_duplicate_removal(
            WorkerConfig(remove_near_duplicates=True, selected_sequence_length=3), False
        )
    with pytest.raises(ConfigError, match="object level"):
        refuse_near_duplicate_removal(WorkerConfig(remove_near_duplicates=True), True)
    refuse_near_duplicate_removal(WorkerConfig(selected_sequence_length=3), True)  # off: fine
    with pytest.raises(ValueError):
        WorkerConfig(near_duplicate_threshold=-0.1)
