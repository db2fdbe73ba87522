"""The flow at its edges: nothing usable, fewer images than asked, LIGHTLY inside INPUT, and the
effective config naming the model that really ran."""

import json
import shutil

import pytest

from thresher.errors import ConfigError, InputError
from thresher.flows import curate


def _snapshot(root):
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def test_corrupt_only_folder_writes_its_findings_and_names_them(
    prefect_server, example_dataset, tmp_path
):
    inp = tmp_path / "broken-only"
    inp.mkdir()
    for name in example_dataset.corrupt:
        shutil.copy(example_dataset.root / name, inp / name.replace("/", "_"))
    lightly = tmp_path / "lightly"
    with pytest.raises(InputError) as err:
        curate(input=str(inp), lightly=str(lightly), selection_config={"n_samples": 2})
    info = next(lightly.glob(".lightly/runs/*/corruptness_check_information.json"))
    assert str(info) in str(err.value)
    corrupt = json.loads(info.read_text())["corrupt_samples"]
    assert sorted(corrupt) == sorted(p.name for p in inp.iterdir())
    run = info.parent
    assert (run / "log.txt").exists() and (run / "filenames" / "corrupt.txt").exists()
    sizes = json.loads((run / "config.json").read_text())["sizes"]
    assert sizes["n_corrupt"] == sizes["n_input"] == len(corrupt) and sizes["n_selected"] == 0


def test_more_samples_than_usable_images_says_so(prefect_server, example_dataset, tmp_path):
    result = curate(
        input=str(example_dataset.root),
        lightly=str(tmp_path / "lightly"),
        selection_config={"n_samples": 1000},
    )
    usable = (
        len(example_dataset.all_files)
        - len(example_dataset.corrupt)
        - len(example_dataset.duplicates)
    )
    assert result.sizes["n_selected"] == usable
    assert result.notes and f"only {usable} images are usable" in result.notes[0]
    config = json.loads(
        (tmp_path / "lightly" / ".lightly" / "runs" / result.run_id / "config.json").read_text()
    )
    assert config["notes"] == result.notes
    # The effective config names the model that embedded, not lightly_config's resnet-18 default.
    assert config["lightly_config"]["model"]["name"] == "efficientnet-lite0"
    assert "default" in config["model"]


def test_lightly_inside_input_is_refused_before_anything_is_written(
    prefect_server, example_dataset
):
    before = _snapshot(example_dataset.root)
    with pytest.raises(ConfigError, match="inside the INPUT location"):
        curate(
            input=str(example_dataset.root),
            lightly=str(example_dataset.root / "out"),
            selection_config={"n_samples": 2},
        )
    assert _snapshot(example_dataset.root) == before


def test_a_failing_report_leaves_no_side_task_writing(
    prefect_server, example_dataset, tmp_path, monkeypatch
):
    # The embeddings files and thumbnails are written beside the report, in threads. When the
    # report fails, the run must wait for them before it ends: its log (saved as the run ends)
    # then holds their last word, and nothing is left half-written.
    import logging
    import time

    from thresher.stages import report, write_results

    real = write_results.embedding_files

    def slow_embedding_files(*args, **kwargs):
        time.sleep(1.5)
        real(*args, **kwargs)
        logging.getLogger("thresher.stages").info("side task: embeddings files written")

    def failing_report(*args, **kwargs):
        raise RuntimeError("the report broke")

    monkeypatch.setattr(write_results, "embedding_files", slow_embedding_files)
    monkeypatch.setattr(report, "report", failing_report)
    lightly = tmp_path / "lightly"
    with pytest.raises(RuntimeError, match="the report broke"):
        curate(
            input=str(example_dataset.root), lightly=str(lightly), selection_config={"n_samples": 5}
        )
    run = next(lightly.glob(".lightly/runs/*"))
    log = (run / "log.txt").read_text()
    assert "the report broke" in log
    assert "side task: embeddings files written" in log, "the run ended while a side task wrote"
    assert (run / "embeddings.csv").is_file()
    assert not [p for p in lightly.rglob("*") if ".tmp-" in p.name]
