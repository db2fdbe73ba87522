"""The bad media corpus through one real run: every file meets the fate written beside it.

One flow run over a folder holding the whole corpus (``media_corpus.ENTRIES``) plus plain
images, asking for more samples than there are, so every usable file is selected, embedded and
thumbnailed. Then a second run over the same folder, which must come from the cache. INPUT
(names, bytes, permissions, link targets, times) must be unchanged by both.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.reliability.media_corpus import Entry, build_corpus, fates
from thresher.flows import curate
from thresher.stages.list_input import printable_name
from thresher.stages.write_results import RunOutputs
from thresher.storage.thumbnails import make_thumbnail, thumbnail_rel


def tree_state(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Everything about a folder tree a write could change, links and special files unfollowed.

    Per entry (by its raw name): the type and permission bits, size, modification time, and
    the SHA-256 of a regular file's bytes (unless it cannot be read; of its first and last MiB
    when over 64 MiB, such as the sparse file) or a link's target.
    """
    state: dict[bytes, tuple[Any, ...]] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content: str = ""
            if stat.S_ISLNK(st.st_mode):
                content = os.fsdecode(os.readlink(path))
            elif stat.S_ISREG(st.st_mode) and os.access(path, os.R_OK):
                with open(path, "rb") as fh:
                    if st.st_size > 64 << 20:
                        head = fh.read(1 << 20)
                        fh.seek(-(1 << 20), os.SEEK_END)
                        content = hashlib.sha256(head + fh.read()).hexdigest()
                    else:
                        content = hashlib.sha256(fh.read()).hexdigest()
            state[os.path.relpath(path, broot)] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return state


@dataclass(frozen=True)
class CorpusRun:
    entries: list[Entry]
    lightly: Path
    first: RunOutputs
    second: RunOutputs
    before: dict[bytes, tuple[Any, ...]]
    after: list[dict[bytes, tuple[Any, ...]]]
    outside_before: dict[bytes, tuple[Any, ...]]
    outside_after: dict[bytes, tuple[Any, ...]]

    def run_file(self, rel: str, run: RunOutputs | None = None) -> Path:
        return self.lightly / ".lightly" / "runs" / (run or self.first).run_id / rel

    def json(self, rel: str, run: RunOutputs | None = None) -> Any:
        return json.loads(self.run_file(rel, run).read_text(encoding="utf-8"))

    def names(self, which: str, run: RunOutputs | None = None) -> list[str]:
        text = self.run_file(f"filenames/{which}.txt", run).read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n")
        return text.split("\n")[:-1]


@pytest.fixture(scope="module")
def corpus_run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    base = tmp_path_factory.mktemp("bad-media")
    root, outside = base / "input", base / "outside"
    entries = build_corpus(root, outside)
    before, outside_before = tree_state(root), tree_state(outside)
    lightly = base / "lightly"
    runs, after = [], []
    # Configs as the user writes them (dicts); more samples than files: every usable one is picked.
    configs: dict[str, Any] = {
        "selection_config": {"n_samples": 1000},
        "worker_config": {"num_threads": 2},
    }
    for run_id in ("first", "second"):
        runs.append(curate(input=str(root), lightly=str(lightly), run_id=run_id, **configs))
        after.append(tree_state(root))
    return CorpusRun(
        entries, lightly, runs[0], runs[1], before, after, outside_before, tree_state(outside)
    )


def test_processed_files_are_embedded_selected_and_thumbnailed(corpus_run: CorpusRun) -> None:
    selected = corpus_run.names("selected")
    with corpus_run.run_file("embeddings.csv").open(newline="", encoding="utf-8") as fh:
        embedded = [row[0] for row in csv.reader(fh)][1:]
    processed = [e.name for e in fates(corpus_run.entries, "processed")]
    # More samples were asked for than exist: every usable file is selected.
    assert sorted(selected) == sorted(processed)
    assert sorted(embedded) == sorted(processed)
    thumbs = {e.name for e in fates(corpus_run.entries, "processed") if e.thumbnail}
    have = {n for n in processed if os.path.isfile(corpus_run.lightly / thumbnail_rel(n))}
    assert have == thumbs
    # Each thumbnail is made from its own file's bytes (x[1].png is not the glob matching x1.png).
    root = corpus_run.lightly.parent / "input"
    for name in ("x[1].png", "x1.png", "star*.png", "question?.png", "#hash.png"):
        made = make_thumbnail((root / name).read_bytes(), name)
        assert (corpus_run.lightly / thumbnail_rel(name)).read_bytes() == made, name
    log = corpus_run.run_file("log.txt").read_text(encoding="utf-8")
    for name in set(processed) - thumbs:
        assert f"no thumbnail for {name}: the file name is too long" in log


def _thumbnail(corpus_run: CorpusRun, name: str) -> np.ndarray:
    with Image.open(corpus_run.lightly / thumbnail_rel(name)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_thumbnails_are_upright_and_in_their_colours(corpus_run: CorpusRun) -> None:
    # exif_rotated.jpg stores a 32x48 (portrait) image whose EXIF says "turn it": upright, it
    # is 48 wide and 32 high with its red block top-left.
    upright = _thumbnail(corpus_run, "exif_rotated.jpg")
    assert upright.shape[:2] == (32, 48)
    assert np.abs(upright[4, 4] - (220, 20, 20)).max() <= 12
    # cmyk.jpg and ycck.jpg: left (200, 30, 30), right (30, 160, 60).
    for name in ("cmyk.jpg", "ycck.jpg"):
        img = _thumbnail(corpus_run, name)
        assert np.abs(img[8, 3] - (200, 30, 30)).max() <= 12, name
        assert np.abs(img[8, 12] - (30, 160, 60)).max() <= 12, name
    # animated.gif / .webp: the first frame, pure red.
    for name in ("animated.gif", "animated.webp"):
        assert np.abs(_thumbnail(corpus_run, name)[8, 8] - (255, 0, 0)).max() <= 12, name


def test_corrupt_files_are_reported_with_their_reason(corpus_run: CorpusRun) -> None:
    info = corpus_run.json("corruptness_check_information.json")["corrupt_samples"]
    expected = fates(corpus_run.entries, "corrupt")
    assert sorted(info) == sorted(e.name for e in expected)
    wrong = {e.name: info[e.name] for e in expected if e.reason not in info[e.name]}
    assert wrong == {}
    assert sorted(corpus_run.names("corrupt")) == sorted(info)


def test_duplicates_name_the_file_that_stays(corpus_run: CorpusRun) -> None:
    dups = corpus_run.json("duplicates.json")["duplicates"]
    assert dups == {e.name: e.duplicate_of for e in fates(corpus_run.entries, "duplicate")}
    assert sorted(corpus_run.names("duplicate")) == sorted(dups)


def test_names_no_output_can_hold_are_refused_at_listing_with_a_reason(
    corpus_run: CorpusRun,
) -> None:
    refused = corpus_run.json("corruptness_check_information.json")["not_listed"]
    expected = fates(corpus_run.entries, "not_listed")
    assert sorted(refused) == sorted(printable_name(e.name) for e in expected)
    for e in expected:
        assert e.reason in refused[printable_name(e.name)], e.name
    # The escaped name is one printable line, so it cannot break a log line or a file list.
    assert all(n.splitlines() == [n] and n.isprintable() for n in refused)
    log = corpus_run.run_file("log.txt").read_text(encoding="utf-8")
    assert "not listed: line\\nbreak.png: its name contains a line break" in log
    assert "not listed: bad\\xff.png: its name is not valid UTF-8" in log


def test_logs_escape_names_that_would_restyle_a_terminal(corpus_run: CorpusRun) -> None:
    log = corpus_run.run_file("log.txt").read_text(encoding="utf-8")
    assert "\x1b" not in log
    assert "corrupt: esc\\x1b[2J.png: not an image" in log


def test_the_accounting_adds_up_in_config_and_report(corpus_run: CorpusRun) -> None:
    listed = [e for e in corpus_run.entries if e.fate in ("processed", "duplicate", "corrupt")]
    sizes = corpus_run.json("config.json")["sizes"]
    assert sizes == corpus_run.first.sizes
    assert sizes["n_input"] == len(listed)
    assert sizes["n_corrupt"] == len(fates(corpus_run.entries, "corrupt"))
    assert sizes["n_duplicate"] == len(fates(corpus_run.entries, "duplicate"))
    assert sizes["n_selected"] + sizes["n_removed"] == len(fates(corpus_run.entries, "processed"))
    parts = ("n_selected", "n_removed", "n_duplicate", "n_corrupt", "n_filtered")
    assert sum(sizes[k] for k in parts) == sizes["n_input"]
    report = json.dumps(corpus_run.json("report.json"))
    found = json.loads(report[report.index('{"nInput"') :].split("}", 1)[0] + "}")
    assert found["nInput"] == sizes["n_input"]
    assert (
        found["nSelected"]
        + found["nRemoved"]
        + found["nDuplicate"]
        + found["nCorrupt"]
        + found["nFiltered"]
        == found["nInput"]
    )


def test_input_is_byte_for_byte_unchanged(corpus_run: CorpusRun) -> None:
    assert corpus_run.after[0] == corpus_run.before
    assert corpus_run.after[1] == corpus_run.before
    assert corpus_run.outside_after == corpus_run.outside_before


def test_a_rerun_comes_from_the_cache_with_the_same_result(corpus_run: CorpusRun) -> None:
    second = corpus_run.second
    for stage in ("corruption_check", "deduplicate", "embed", "select"):
        assert stage in second.cached, (stage, second.cached)
    assert second.sizes == corpus_run.first.sizes
    assert corpus_run.names("selected", second) == corpus_run.names("selected")
    assert corpus_run.json("corruptness_check_information.json", second) == corpus_run.json(
        "corruptness_check_information.json"
    )


def test_unicode_names_round_trip_unnormalised(corpus_run: CorpusRun) -> None:
    # NFC and NFD spell the same word but are two files on Linux: both are kept, as written.
    selected = set(corpus_run.names("selected"))
    assert {"caf\u00e9.png", "cafe\u0301.png"} <= selected
    embeddings = io.BytesIO(corpus_run.run_file("embeddings.csv").read_bytes())
    raw = embeddings.read()
    assert "caf\u00e9.png".encode() in raw and "cafe\u0301.png".encode() in raw
