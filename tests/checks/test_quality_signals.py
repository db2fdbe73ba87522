"""Quality signals: each one flags what it names, comes from the corruption check's own decode,
and works as a METADATA input (a THRESHOLD strategy drops the flagged images in a real run)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from thresher.checks import corruption
from thresher.checks.corruption import check_files
from thresher.checks.quality import CUTOFF, quality_signals
from thresher.config import load_configs
from thresher.config.selection import THRESHER_METADATA_KEYS
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input
from thresher.stages.select import select
from thresher.storage.location import Location


def _photo(name: str = "astronaut") -> Image.Image:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(a[..., :3]).astype(np.uint8))


def _issues(img: Image.Image) -> set[str]:
    return {k.split(".")[1] for k, v in quality_signals(img).items() if v >= CUTOFF}


def test_a_good_photo_has_no_issue():
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        assert _issues(_photo(name)) == set(), name


def test_each_signal_flags_what_it_names():
    assert "dark_score" in _issues(Image.new("RGB", (300, 300), (0, 0, 0)))
    assert "bright_score" in _issues(Image.new("RGB", (300, 300), (255, 255, 255)))
    assert _issues(Image.new("RGB", (300, 300), (128, 90, 60))) >= {"low_information_score"}
    assert "odd_aspect_ratio_score" in _issues(_photo().resize((2000, 20)))
    assert "tiny_score" in _issues(_photo().resize((8, 8)))
    # a dim photo is dark, not the photo itself; the same photo very bright is bright
    dim = Image.fromarray((np.asarray(_photo()) * 0.15).astype(np.uint8))
    assert "dark_score" in _issues(dim) and "dark_score" not in _issues(_photo())
    light = Image.fromarray((255 - (255 - np.asarray(_photo())) * 0.15).astype(np.uint8))
    assert "bright_score" in _issues(light)


def test_a_blurred_photo_scores_blurrier_than_the_sharp_one():
    sharp = _photo("coffee")
    for radius in (2, 4):
        blurred = sharp.filter(ImageFilter.GaussianBlur(radius))
        k = "thresher.blur_score"
        assert quality_signals(blurred)[k] > quality_signals(sharp)[k] + 0.2
    assert "blur_score" in _issues(sharp.filter(ImageFilter.GaussianBlur(6)))


def test_scores_are_in_unit_range_for_every_mode():
    img = _photo("camera")
    for mode in ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"):
        converted = img.convert(mode) if mode != "I;16" else img.convert("I").convert("I;16")
        s = quality_signals(converted)
        assert list(s) == list(THRESHER_METADATA_KEYS)
        assert all(0.0 <= v <= 1.0 for v in s.values()), (mode, s)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "input"
    root.mkdir()
    photos = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
    for i, name in enumerate(photos):
        _photo(name).save(root / f"good-{i}.png")
        dim = (np.asarray(_photo(name)) * 0.1).astype(np.uint8)
        Image.fromarray(dim).save(root / f"dark-{i}.jpg", quality=90)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def test_the_corruption_check_computes_them_on_its_one_decode(folder, monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        opened.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(corruption.Image, "open", counting_open)
    names = sorted(p.name for p in folder.iterdir())
    results = check_files(Location(str(folder)), names, num_threads=1)
    # One open per file, two for a PNG (its verify() checks the CRCs, then it is opened again
    # to decode); the broken PNG fails at its first open; the quality scores add none.
    pngs = [n for n in names if n.endswith(".png") and n != "broken.png"]
    assert pngs and len(pngs) < len(names) - 1  # PNGs and others, or this says nothing
    assert len(opened) == len(names) + len(pngs)
    by_name = {r.name: r for r in results}
    assert by_name["broken.png"].quality is None and by_name["broken.png"].corrupt_reason
    dark = dict(zip(THRESHER_METADATA_KEYS, by_name["dark-0.jpg"].quality, strict=True))
    assert dark["thresher.dark_score"] >= CUTOFF
    off = check_files(Location(str(folder)), names, check_corruption=False, num_threads=1)
    assert all(r.quality is None for r in off)  # not decoded: no scores


def test_a_threshold_strategy_on_a_score_drops_the_flagged_images(folder, tmp_path):
    selection = {
        "n_samples": 100,
        "strategies": [
            {
                "input": {"type": "METADATA", "key": "thresher.dark_score"},
                "strategy": {"type": "THRESHOLD", "threshold": CUTOFF, "operation": "SMALLER"},
            },
            {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
        ],
    }
    cfg = load_configs({"num_processes": 0}, selection, {})
    listing = list_input(str(folder), str(tmp_path / "lightly"))
    checked = corruption_check(listing)
    stored = checked.quality()
    assert set(stored) == {p.name for p in folder.iterdir()} - {"broken.png"}
    assert all(stored[n]["thresher.dark_score"] >= CUTOFF for n in stored if "dark" in n)
    dedup = deduplicate(checked)
    emb = embed(listing, dedup, cfg.worker, cfg.lightly)
    sel = select(listing, emb, cfg.selection, seed=0)
    names = emb.filenames()
    picked = sorted(names[i] for i in sel.indices())
    assert picked == sorted(n for n in names if n.startswith("good-"))


def test_the_report_shows_both_findings_with_examples(tmp_path):
    """report.json carries the counts and examples; the PDF has the page; the figures exist."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
    from report_synthetic import synthetic_inputs

    from thresher.reports import build_report

    inputs = synthetic_inputs(n=60, n_selected=10)
    names = list(inputs.filenames)
    inputs.near_duplicates = {
        "threshold": 0.15,
        "metric": "cosine distance",
        "removed": False,
        "groups": [[names[0], names[1], names[2]], [names[5], names[9]]],
        "distances": [[0.0, 0.02, 0.11], [0.0, 0.05]],
    }
    good = quality_signals(_photo())
    dark = quality_signals(Image.new("RGB", (300, 300)))
    inputs.quality = {n: (dark if i < 3 else good) for i, n in enumerate(names)}
    report = build_report(inputs, tmp_path)
    stored = json.loads((tmp_path / "report.json").read_text())
    near = stored["datasetAnalysis"]["nearDuplicates"]
    assert (near["nGroups"], near["nNearDuplicates"]) == (2, 3)
    assert near["examples"][0] == {
        "keptImage": names[0],
        "duplicateImage": names[2],  # the farthest member shows the threshold's reach
        "distance": 0.11,
    }
    issues = stored["datasetAnalysis"]["qualityIssues"]
    assert issues["nImages"] == 60 and issues["counts"]["thresher.dark_score"] == 3
    assert issues["counts"]["thresher.tiny_score"] == 0
    assert [e["image"] for e in issues["examples"]["thresher.dark_score"]] == sorted(names[:3])
    for plot in ("near_duplicate_examples", "quality_examples"):
        assert (tmp_path / report["plots"][plot]).is_file()
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Near duplicates and quality issues" in text
        assert "3 images in 2 groups" in text and "too dark" in text
