"""The seed's training snippets through the flow and the CLI (issue 4), kept small: 1 epoch."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from thresher.flows import curate

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]
# first_steps.rst's full lightly_config, with max_epochs and the loader shrunk for a test run.
FULL_LIGHTLY_CONFIG = {
    "loader": {"batch_size": 16, "shuffle": True, "num_workers": 0, "drop_last": True},
    "model": {"name": "resnet-18", "out_dim": 128, "num_ftrs": 32, "width": 1},
    "trainer": {"gpus": 1, "max_epochs": 1, "precision": 32},
    "criterion": {"temperature": 0.5},
    "optimizer": {"lr": 1, "weight_decay": 0.00001},
    "collate": {
        "input_size": 32,
        "cj_prob": 0.8,
        "cj_bright": 0.7,
        "cj_contrast": 0.7,
        "cj_sat": 0.7,
        "cj_hue": 0.2,
        "min_scale": 0.15,
        "random_gray_scale": 0.2,
        "gaussian_blur": 0.5,
        "kernel_size": 0.1,
        "vf_prob": 0,
        "hf_prob": 0.5,
        "rr_prob": 0,
    },
}
SMALL = {
    "trainer": {"max_epochs": 1},
    "collate": {"input_size": 32},
    "loader": {"batch_size": 16, "num_workers": 0},
}


@pytest.fixture(scope="module")
def trained_run(prefect_server, example_dataset, tmp_path_factory):
    lightly = tmp_path_factory.mktemp("train") / "lightly"
    result = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        worker_config={
            "enable_corruptness_check": True,
            "remove_exact_duplicates": True,
            "enable_training": True,
        },
        selection_config={"n_samples": 5, "strategies": DIVERSITY},
        lightly_config=SMALL,
    )
    return result, lightly


def test_training_writes_checkpoint_and_report(trained_run):
    result, lightly = trained_run
    run = lightly / ".lightly" / "runs" / result.run_id
    assert (run / "checkpoint.ckpt").stat().st_size > 1_000_000
    assert (run / "report.pdf").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["epochs"] == 1
    assert "resnet-18" in config["model"]
    assert "epoch 1: loss" in (run / "log.txt").read_text()


def test_checkpoint_from_shared_dir_embeds_without_training(
    trained_run, example_dataset, tmp_path, monkeypatch
):
    result, lightly = trained_run
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(
        lightly / ".lightly" / "runs" / result.run_id / "checkpoint.ckpt",
        shared / "checkpoint.ckpt",
    )
    monkeypatch.setenv("THRESHER_SHARED_DIR", str(shared))
    again = curate(
        input=str(example_dataset.root),
        lightly=str(tmp_path / "out"),
        worker_config={"enable_training": False, "checkpoint": "checkpoint.ckpt"},
        selection_config={"n_samples": 5, "strategies": DIVERSITY},
        lightly_config={"collate": {"input_size": 32}},
    )
    run = tmp_path / "out" / ".lightly" / "runs" / again.run_id
    config = json.loads((run / "config.json").read_text())
    assert "checkpoint" in config["model"].lower() or "resnet-18" in config["model"]
    assert not (run / "checkpoint.ckpt").exists()  # no training, no checkpoint artifact
    header = (run / "embeddings.csv").read_text().splitlines()[0].split(",")
    assert len(header) == 2 + 32  # D = lightly_config.model.num_ftrs (32): filenames + 32 + labels


def test_checkpoint_run_id_reuses_earlier_run(trained_run, example_dataset):
    result, lightly = trained_run
    again = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        worker_config={"checkpoint_run_id": result.run_id},
        selection_config={"n_samples": 3},
        lightly_config={"collate": {"input_size": 32}},
    )
    assert again.sizes["n_selected"] == 3


def test_missing_checkpoint_is_a_clear_error(
    prefect_server, example_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("THRESHER_SHARED_DIR", str(tmp_path))
    state = curate(
        input=str(example_dataset.root),
        lightly=str(tmp_path / "o"),
        worker_config={"checkpoint": "nope.ckpt"},
        selection_config={"n_samples": 3},
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=r"worker_config\.checkpoint: 'nope\.ckpt' was not found"):
        state.result()


def test_cli_config_with_full_lightly_config(example_dataset, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "worker_config": {
                    "enable_corruptness_check": True,
                    "remove_exact_duplicates": True,
                    "enable_training": True,
                },
                "selection_config": {"n_samples": 5, "strategies": DIVERSITY},
                "lightly_config": FULL_LIGHTLY_CONFIG,
            }
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "thresher",
            "run",
            str(example_dataset.root),
            "--lightly",
            str(tmp_path / "out"),
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "THRESHER_PROGRESS": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "out" / ".lightly" / "runs").iterdir())
    assert (runs[0] / "checkpoint.ckpt").exists() and (runs[0] / "report.pdf").exists()


def test_continue_training_from_checkpoint(trained_run, example_dataset, tmp_path, monkeypatch):
    result, lightly = trained_run
    monkeypatch.setenv("THRESHER_SHARED_DIR", str(lightly / ".lightly" / "runs" / result.run_id))
    again = curate(
        input=str(example_dataset.root),
        lightly=str(tmp_path / "out"),
        worker_config={"enable_training": True, "checkpoint": "checkpoint.ckpt"},
        selection_config={"n_samples": 3},
        lightly_config=SMALL,
    )
    run = tmp_path / "out" / ".lightly" / "runs" / again.run_id
    assert (run / "checkpoint.ckpt").exists()
    assert "starting from checkpoint.ckpt" in (run / "log.txt").read_text()


def test_user_embeddings_csv_replaces_the_embed_stage(trained_run, example_dataset, tmp_path):
    result, lightly = trained_run
    out = tmp_path / "out"
    (out / ".lightly" / "embeddings").mkdir(parents=True)
    csv = (lightly / ".lightly" / "runs" / result.run_id / "embeddings.csv").read_text()
    (out / ".lightly" / "embeddings" / "mine.csv").write_text(csv)
    again = curate(
        input=str(example_dataset.root),
        lightly=str(out),
        worker_config={"embeddings": "mine.csv"},
        selection_config={"n_samples": 4},
    )
    config = json.loads((out / ".lightly" / "runs" / again.run_id / "config.json").read_text())
    assert config["model"] == "precomputed embeddings from .lightly/embeddings/mine.csv"
    assert config["versions"]["model"] == "embeddings CSV (mine.csv)"
    # Rows for listed files the run drops (corrupt, duplicate) are ignored, as another tool's
    # CSV over the whole folder has them; a row for a file INPUT does not hold is an error.
    header, first, *rest = csv.splitlines()
    vector = first.split(",", 1)[1]
    extra = [f"{name},{vector}" for name in [*example_dataset.corrupt, *example_dataset.duplicates]]
    whole = "\n".join([header, first, *rest, *extra]) + "\n"
    (out / ".lightly" / "embeddings" / "whole.csv").write_text(whole)
    again = curate(
        input=str(example_dataset.root),
        lightly=str(out),
        worker_config={"embeddings": "whole.csv"},
        selection_config={"n_samples": 4},
    )
    assert again.sizes["n_selected"] == 4
    # A CSV that misses input files is a clear error naming them.
    lines = csv.splitlines()
    (out / ".lightly" / "embeddings" / "short.csv").write_text("\n".join(lines[:-3]) + "\n")
    state = curate(
        input=str(example_dataset.root),
        lightly=str(out),
        worker_config={"embeddings": "short.csv"},
        selection_config={"n_samples": 4},
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=lines[-1].split(",")[0]):
        state.result()
