"""Bad user files: predictions and metadata JSON, embeddings CSVs, tags, a checkpoint.

Each case starts from a valid LIGHTLY location (tasks, schemas, one JSON per image, an
embeddings CSV with a row per image) that passes the check, breaks one thing, and runs the real
``thresher run``. It must exit 2 with one paragraph that names the file and the field (or the
config key that points at the file) and says what to do, before Prefect starts, and write
nothing: LIGHTLY byte-for-byte as it was (no cache, no run folder), INPUT untouched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from thresher.cli import main
from thresher.config import load_configs
from thresher.errors import ThresherError
from thresher.examples import make_example_dataset
from thresher.stages._user_files import check_user_files

FIX = re.compile(
    r"\bmust\b|\bset\b|\badd\b|\bremove\b|\buse\b|\bkeep\b|\bdrop\b|\bfix\b|\brename\b|"
    r"\bput\b|\bcorrect\b|\bwrite\b|\blist\b|\brecompute\b|\bsave\b|\blower\b|\bupload\b",
    re.IGNORECASE,
)

# The images make_example_dataset(n_clusters=1, per_cluster=3, n_duplicates=0) writes.
IMAGES = ["cluster_0/img_000.png", "cluster_0/img_001.jpg", "cluster_0/img_002.png"]
BROKEN = ["broken/bomb.png", "broken/empty.png", "broken/notes.jpg", "broken/truncated.png"]
LISTED = BROKEN + IMAGES

DET = ".lightly/predictions/det"
CLS = ".lightly/predictions/cls"
META = ".lightly/metadata"
CSV = ".lightly/embeddings/mine.csv"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def write_valid(lightly: Path) -> None:
    """A LIGHTLY location whose every user file is right (test_the_valid_files_pass).

    The corrupt files in ``broken/`` have no predictions, metadata or CSV row: the run drops
    them, so none is needed.
    """

    def put(rel: str, data: Any) -> None:
        p = lightly / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data if isinstance(data, str) else json.dumps(data))

    put(".lightly/predictions/tasks.json", ["det", "cls"])
    put(
        f"{DET}/schema.json",
        {
            "task_type": "object-detection",
            "categories": [{"id": 0, "name": "car"}, {"id": 1, "name": "person"}],
        },
    )
    put(
        f"{CLS}/schema.json",
        {
            "task_type": "classification",
            "categories": [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}],
        },
    )
    for name in IMAGES:
        put(
            f"{DET}/{_stem(name)}.json",
            {
                "file_name": name,
                "predictions": [{"category_id": 1, "bbox": [1, 2, 10, 20], "score": 0.9}],
            },
        )
        put(
            f"{CLS}/{_stem(name)}.json",
            {"file_name": name, "predictions": [{"category_id": 0, "probabilities": [0.7, 0.3]}]},
        )
        put(
            f"{META}/{_stem(name)}.json",
            {
                "file_name": name,
                "type": "image",
                "metadata": {"weather": {"temp": 21.5, "condition": "rain"}},
            },
        )
    put(
        f"{META}/schema.json",
        [
            {
                "name": "Temperature",
                "path": "weather.temp",
                "defaultValue": 0.0,
                "valueDataType": "NUMERIC_FLOAT",
            },
            {
                "name": "Condition",
                "path": "weather.condition",
                "defaultValue": "sunny",
                "valueDataType": "CATEGORICAL_STRING",
            },
        ],
    )
    rows = ["filenames,embedding_0,embedding_1,labels"]
    # Rows for the good images only, as thresher's own embeddings.csv has: the corrupt files
    # are dropped by the run, so a CSV needs no row for them.
    rows += [f"{n},{0.1 * i:.1f},0.5,0" for i, n in enumerate(IMAGES)]
    put(CSV, "\n".join(rows) + "\n")
    put(".lightly/embeddings/queries.csv", "filenames,embedding_0,embedding_1,labels\nq,1,0,0\n")
    put(".lightly/tags/night.txt", "cluster_0/img_000.png\n")


def _entry(inp: dict[str, Any], strategy: dict[str, Any]) -> dict[str, Any]:
    return {"input": inp, "strategy": strategy}


_DET_COUNT = _entry(
    {"type": "PREDICTIONS", "task": "det", "name": "CATEGORY_COUNT"}, {"type": "WEIGHTS"}
)
_CLS_SCORES = _entry(
    {"type": "SCORES", "task": "cls", "score": "uncertainty_margin"}, {"type": "WEIGHTS"}
)
_TEMP = _entry(
    {"type": "METADATA", "key": "weather.temp"},
    {"type": "THRESHOLD", "threshold": 10, "operation": "BIGGER"},
)
_COND = _entry(
    {"type": "METADATA", "key": "weather.condition"}, {"type": "BALANCE", "target": {"rain": 0.5}}
)

# Every case's configs use all of them, so any one broken file is reached.
ALL_STRATEGIES = [
    _DET_COUNT,
    _CLS_SCORES,
    _TEMP,
    _COND,
    _entry({"type": "EMBEDDINGS", "tag_name": "night"}, {"type": "SIMILARITY"}),
    _entry({"type": "EMBEDDINGS", "query_embeddings": "queries.csv"}, {"type": "SIMILARITY"}),
]


def _configs(**changes: Any) -> dict[str, Any]:
    sel = {"n_samples": 2, "strategies": changes.pop("strategies", ALL_STRATEGIES)}
    worker = {"embeddings": "mine.csv", **changes.pop("worker", {})}
    return {"worker_config": worker, "selection_config": sel, **changes}


@dataclass(frozen=True)
class Case:
    """Break one thing in a valid LIGHTLY location; the message must name ``names``."""

    id: str
    names: tuple[str, ...]
    write: dict[str, str | None] = field(default_factory=dict)  # rel -> text (None: delete)
    configs: dict[str, Any] = field(default_factory=_configs)

    def apply(self, lightly: Path) -> None:
        write_valid(lightly)
        for rel, text in self.write.items():
            p = lightly / rel
            if text is None:
                p.unlink()
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)


def _j(data: Any) -> str:
    return json.dumps(data)


def _det(*preds: dict[str, Any], name: str = IMAGES[0]) -> str:
    return _j({"file_name": name, "predictions": list(preds)})


def _cls(*probs: float) -> str:
    return _j(
        {"file_name": IMAGES[0], "predictions": [{"category_id": 0, "probabilities": list(probs)}]}
    )


def _meta(metadata: dict[str, Any], name: str = IMAGES[0]) -> str:
    return _j({"file_name": name, "type": "image", "metadata": metadata})


def _csv(*rows: str, header: str = "filenames,embedding_0,embedding_1,labels") -> str:
    valid = [f"{n},0.1,0.5,0" for n in LISTED]
    return "\n".join([header, *(rows or valid)]) + "\n"


_F0 = f"{_stem(IMAGES[0])}.json"  # cluster_0/img_000.json
_SCHEMA_ENTRY = {"name": "T", "path": "weather.temp", "valueDataType": "NUMERIC_FLOAT"}

CASES: list[Case] = [
    # ------------------------------------------------------------------ predictions
    Case(
        "pred-truncated",
        (f"{DET}/{_F0}", "line 1"),
        {f"{DET}/{_F0}": _det({"category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5})[:40]},
    ),
    Case(
        "pred-schema-truncated",
        (f"{DET}/schema.json", "line 1"),
        {f"{DET}/schema.json": '{"task_type": "object-detection", "categ'},
    ),
    Case(
        "pred-tasks-truncated",
        (".lightly/predictions/tasks.json",),
        {".lightly/predictions/tasks.json": '["det", "cl'},
    ),
    Case(
        "pred-tasks-missing",
        ("selection_config.strategies[0].input.task", "tasks.json", "none"),
        {".lightly/predictions/tasks.json": None},
    ),
    Case(
        "pred-tasks-not-a-list",
        (".lightly/predictions/tasks.json", "<root>"),
        {".lightly/predictions/tasks.json": _j({"det": 1})},
    ),
    Case("pred-file-is-a-list", (f"{DET}/{_F0}", "<root>"), {f"{DET}/{_F0}": "[]"}),
    Case(
        "pred-no-predictions-key",
        (f"{DET}/{_F0}", "predictions"),
        {f"{DET}/{_F0}": _j({"file_name": IMAGES[0]})},
    ),
    Case(
        "pred-missing-bbox",
        (f"{DET}/{_F0}", "predictions[0].bbox"),
        {f"{DET}/{_F0}": _det({"category_id": 1, "score": 0.5})},
    ),
    Case(
        "pred-category-id-string",
        (f"{DET}/{_F0}", "predictions[0].category_id"),
        {f"{DET}/{_F0}": _det({"category_id": "car", "bbox": [1, 2, 3, 4], "score": 0.5})},
    ),
    Case(
        "pred-unknown-category-id",
        (f"{DET}/{_F0}", "predictions[0].category_id"),
        {f"{DET}/{_F0}": _det({"category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5})},
    ),
    Case(
        "pred-score-out-of-range",
        (f"{DET}/{_F0}", "predictions[0].score"),
        {f"{DET}/{_F0}": _det({"category_id": 1, "bbox": [1, 2, 3, 4], "score": 3})},
    ),
    Case(
        "pred-too-many-categories",
        (f"{CLS}/{_F0}", "predictions[0].probabilities", "got 3"),
        {f"{CLS}/{_F0}": _cls(0.5, 0.3, 0.2)},
    ),
    Case(
        "pred-too-few-categories",
        (f"{CLS}/{_F0}", "predictions[0].probabilities", "got 1"),
        {f"{CLS}/{_F0}": _cls(1.0)},
    ),
    Case(
        "pred-probabilities-sum",
        (f"{CLS}/{_F0}", "predictions[0].probabilities", "sum"),
        {f"{CLS}/{_F0}": _cls(0.9, 0.9)},
    ),
    Case(
        "pred-schema-task-type",
        (f"{DET}/schema.json", "task_type"),
        {
            f"{DET}/schema.json": _j(
                {"task_type": "detection", "categories": [{"id": 0, "name": "car"}]}
            )
        },
    ),
    Case(
        "pred-schema-no-categories",
        (f"{DET}/schema.json", "categories"),
        {f"{DET}/schema.json": _j({"task_type": "object-detection"})},
    ),
    Case(
        "pred-schema-duplicate-id",
        (f"{DET}/schema.json", "categories[1].id"),
        {
            f"{DET}/schema.json": _j(
                {
                    "task_type": "object-detection",
                    "categories": [{"id": 0, "name": "car"}, {"id": 0, "name": "person"}],
                }
            )
        },
    ),
    Case("pred-schema-missing", (f"{DET}/schema.json", "not found"), {f"{DET}/schema.json": None}),
    Case(
        "pred-for-a-file-not-in-input",
        (f"{DET}/ghost.json", "no image in INPUT"),
        {f"{DET}/ghost.json": _det(name="ghost.png")},
    ),
    Case(
        "pred-file-name-disagrees",
        (f"{DET}/{_F0}", "file_name"),
        {f"{DET}/{_F0}": _det(name=IMAGES[2])},
    ),
    Case(
        "pred-task-not-listed",
        ("selection_config.strategies[0].input.task", "tasks.json"),
        configs=_configs(
            strategies=[
                _entry(
                    {"type": "PREDICTIONS", "task": "seg", "name": "CATEGORY_COUNT"},
                    {"type": "WEIGHTS"},
                )
            ]
        ),
    ),
    Case(
        "pred-unknown-config-category",
        ("selection_config.strategies[0].input.categories", "'truck'", "schema.json"),
        configs=_configs(
            strategies=[
                _entry(
                    {
                        "type": "PREDICTIONS",
                        "task": "det",
                        "name": "CATEGORY_COUNT",
                        "categories": ["truck"],
                    },
                    {"type": "WEIGHTS"},
                )
            ]
        ),
    ),
    Case(
        "pred-balance-target-unknown-class",
        ("selection_config.strategies[0].strategy.target", "'bus'"),
        configs=_configs(
            strategies=[
                _entry(
                    {"type": "PREDICTIONS", "task": "det", "name": "CLASS_DISTRIBUTION"},
                    {"type": "BALANCE", "target": {"bus": 0.5}},
                )
            ]
        ),
    ),
    # --------------------------------------------------------------------- metadata
    Case(
        "meta-schema-truncated",
        (f"{META}/schema.json", "line 1"),
        {f"{META}/schema.json": '[{"name": "T", "path": "weather.te'},
    ),
    Case(
        "meta-file-truncated",
        (f"{META}/{_F0}", "line 1"),
        {f"{META}/{_F0}": _meta({"weather": {"temp": 3}})[:30]},
    ),
    Case(
        "meta-schema-not-a-list",
        (f"{META}/schema.json", "<root>"),
        {f"{META}/schema.json": _j(_SCHEMA_ENTRY)},
    ),
    Case(
        "meta-schema-bad-type",
        (f"{META}/schema.json", "[0].valueDataType"),
        {f"{META}/schema.json": _j([{**_SCHEMA_ENTRY, "valueDataType": "FLOAT"}])},
    ),
    Case(
        "meta-schema-bad-default",
        (f"{META}/schema.json", "[0].defaultValue"),
        {f"{META}/schema.json": _j([{**_SCHEMA_ENTRY, "defaultValue": "warm"}])},
    ),
    Case(
        "meta-schema-missing", (f"{META}/schema.json", "not found"), {f"{META}/schema.json": None}
    ),
    Case(
        "meta-value-wrong-type",
        (f"{META}/{_F0}", "metadata.weather.temp"),
        {f"{META}/{_F0}": _meta({"weather": {"temp": "hot", "condition": "rain"}})},
    ),
    Case(
        "meta-metadata-not-an-object",
        (f"{META}/{_F0}", "metadata"),
        {f"{META}/{_F0}": _j({"file_name": IMAGES[0], "metadata": [1, 2]})},
    ),
    Case(
        "meta-for-a-file-not-in-input",
        (f"{META}/ghost.json", "no image in INPUT"),
        {f"{META}/ghost.json": _meta({}, name="ghost.png")},
    ),
    Case(
        "meta-file-name-disagrees",
        (f"{META}/{_F0}", "file_name"),
        {f"{META}/{_F0}": _meta({"weather": {"temp": 1}}, name="elsewhere/x.png")},
    ),
    Case(
        "meta-numeric-without-value-or-default",
        (f"{META}/{_F0}", "metadata.weather.temp", "defaultValue"),
        {f"{META}/schema.json": _j([_SCHEMA_ENTRY]), f"{META}/{_F0}": _meta({})},
        _configs(strategies=[_TEMP]),
    ),
    Case(
        "meta-key-not-in-schema",
        ("selection_config.strategies[0].input.key", "schema.json"),
        configs=_configs(
            strategies=[_entry({"type": "METADATA", "key": "weather.wind"}, {"type": "WEIGHTS"})]
        ),
    ),
    Case(
        "meta-balance-on-numeric",
        ("selection_config.strategies[0].input.key", "numeric"),
        configs=_configs(
            strategies=[
                _entry(
                    {"type": "METADATA", "key": "weather.temp"},
                    {"type": "BALANCE", "distribution": "UNIFORM"},
                )
            ]
        ),
    ),
    Case(
        "meta-weights-on-categorical",
        ("selection_config.strategies[0].input.key", "categorical"),
        configs=_configs(
            strategies=[
                _entry({"type": "METADATA", "key": "weather.condition"}, {"type": "WEIGHTS"})
            ]
        ),
    ),
    # ----------------------------------------------------------------- embeddings CSV
    Case(
        "csv-row-too-short",
        (CSV, "row 2", "columns"),
        {
            CSV: _csv(
                f"{LISTED[0]},0.1,0.5,0",
                f"{LISTED[1]},0.1,0",
                *(f"{n},0.1,0.5,0" for n in LISTED[2:]),
            )
        },
    ),
    Case(
        "csv-row-too-long",
        (CSV, "row 1", "columns"),
        {CSV: _csv(f"{LISTED[0]},0.1,0.5,0.7,0", *(f"{n},0.1,0.5,0" for n in LISTED[1:]))},
    ),
    Case(
        "csv-nan",
        (CSV, "embedding_1", "row 3"),
        {CSV: _csv(*(f"{n},0.1,{'nan' if i == 2 else 0.5},0" for i, n in enumerate(LISTED)))},
    ),
    Case(
        "csv-infinite",
        (CSV, "embedding_0", "row 1"),
        {CSV: _csv(*(f"{n},{'inf' if i == 0 else 0.1},0.5,0" for i, n in enumerate(LISTED)))},
    ),
    Case(
        "csv-empty-value",
        (CSV, "embedding_0", "row 4"),
        {CSV: _csv(*(f"{n},{'' if i == 3 else 0.1},0.5,0" for i, n in enumerate(LISTED)))},
    ),
    Case(
        "csv-not-a-number",
        (CSV, "embedding_1"),
        {CSV: _csv(*(f"{n},0.1,{'abc' if i == 1 else 0.5},0" for i, n in enumerate(LISTED)))},
    ),
    Case(
        "csv-duplicate-filename",
        (CSV, "filenames", repr(LISTED[0])),
        {CSV: _csv(*(f"{n},0.1,0.5,0" for n in [*LISTED, LISTED[0]]))},
    ),
    Case(
        "csv-bad-header",
        (CSV, "filenames"),
        {CSV: _csv(header="name,embedding_0,embedding_1,labels")},
    ),
    Case(
        "csv-unknown-column",
        (CSV, "score"),
        {CSV: _csv(header="filenames,embedding_0,score,labels")},
    ),
    Case(
        "csv-rows-for-files-not-in-input",
        ("worker_config.embeddings", "'ghost.png'"),
        {CSV: _csv(*(f"{n},0.1,0.5,0" for n in [*LISTED, "ghost.png"]))},
    ),
    Case(
        "csv-not-found",
        ("worker_config.embeddings", "'other.csv'"),
        configs=_configs(worker={"embeddings": "other.csv"}),
    ),
    Case(
        "query-csv-nan",
        (".lightly/embeddings/queries.csv", "embedding_0"),
        {".lightly/embeddings/queries.csv": _csv("q,nan,0,0")},
    ),
    Case(
        "query-csv-empty",
        (".lightly/embeddings/queries.csv", "no embeddings"),
        {".lightly/embeddings/queries.csv": "filenames,embedding_0,labels\n"},
    ),
    # -------------------------------------------------------- tags, relevant files, model
    Case(
        "query-csv-other-size",
        ("selection_config.strategies[5].input.query_embeddings", "3", "2"),
        {
            ".lightly/embeddings/queries.csv": "filenames,embedding_0,embedding_1,embedding_2\nq,1,0,0\n"
        },
    ),
    Case(
        "tag-missing",
        ("selection_config.strategies[4].input.tag_name", "'night'"),
        {".lightly/tags/night.txt": None},
    ),
    Case(
        "tag-names-no-input-file",
        (".lightly/tags/night.txt", "INPUT"),
        {".lightly/tags/night.txt": "elsewhere/a.png\n"},
    ),
    Case(
        "relevant-file-missing",
        ("worker_config.relevant_filenames_file",),
        configs=_configs(worker={"relevant_filenames_file": ".lightly/relevant.txt"}),
    ),
    Case(
        "relevant-file-malformed",
        (".lightly/relevant.txt", "line 2", "'../x.png'"),
        {".lightly/relevant.txt": f"{IMAGES[0]}\n../x.png\n"},
        _configs(worker={"relevant_filenames_file": ".lightly/relevant.txt"}),
    ),
    Case(
        "relevant-file-empty",
        (".lightly/relevant.txt", "empty"),
        {".lightly/relevant.txt": "\n"},
        _configs(worker={"relevant_filenames_file": ".lightly/relevant.txt"}),
    ),
    Case(
        "relevant-file-matches-nothing",
        ("worker_config.relevant_filenames_file", "matches none"),
        {".lightly/relevant.txt": "elsewhere/a.png\n"},
        _configs(
            strategies=[_DET_COUNT],
            worker={"relevant_filenames_file": ".lightly/relevant.txt", "embeddings": ""},
        ),
    ),
    Case(
        "checkpoint-missing",
        ("worker_config.checkpoint", "nope.ckpt"),
        configs=_configs(worker={"embeddings": "", "checkpoint": "nope.ckpt"}),
    ),
    Case(
        "checkpoint-run-missing",
        ("worker_config.checkpoint_run_id", "r0"),
        configs=_configs(worker={"embeddings": "", "checkpoint_run_id": "r0"}),
    ),
]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-files") / "images"
    make_example_dataset(root, n_clusters=1, per_cluster=3, n_duplicates=0)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.*g")) == sorted(LISTED)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` with its bytes, and every folder."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(root.rglob("*"))
    }


def _args(configs: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, flag in (
        ("worker_config", "--worker-config"),
        ("selection_config", "--selection-config"),
        ("lightly_config", "--lightly-config"),
    ):
        if key in configs:
            out += [flag, json.dumps(configs[key])]
    return out


def check_message(message: str, case: Case) -> None:
    for name in case.names:
        assert name in message, f"{case.id}: {name!r} not named in: {message}"
    assert FIX.search(message), f"{case.id}: no fix in: {message}"
    assert "Traceback" not in message, message


def test_the_valid_files_pass(images: Path, tmp_path: Path) -> None:
    """The baseline is valid: each case fails because of its one change, not the baseline."""
    write_valid(tmp_path / "lightly")
    cfg = load_configs(**_configs())
    check_user_files(cfg, str(images), str(tmp_path / "lightly"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_file_gives_one_message_exit_2_and_writes_nothing(
    case: Case,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("THRESHER_SHARED_DIR", str(tmp_path))  # relative checkpoints resolve here
    lightly = tmp_path / "lightly"
    case.apply(lightly)
    before, before_input = snapshot(lightly), snapshot(images)
    code = main(["run", str(images), "--lightly", str(lightly), *_args(case.configs)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert snapshot(lightly) == before, "a bad user file wrote into LIGHTLY"
    assert snapshot(images) == before_input, "INPUT changed"
    assert err.startswith("thresher: error:") and err.count("thresher: error:") == 1, err
    assert "curating" not in err, "the mistake was found only after Prefect started"
    check_message(" ".join(err.split()), case)


@pytest.mark.parametrize("case_id", ["pred-truncated", "csv-nan", "meta-for-a-file-not-in-input"])
def test_the_real_command_in_a_fresh_process(case_id: str, images: Path, tmp_path: Path) -> None:
    """The installed entry point: exit status 2, one paragraph on stderr, nothing written."""
    case = next(c for c in CASES if c.id == case_id)
    lightly = tmp_path / "lightly"
    case.apply(lightly)
    before = snapshot(lightly)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "thresher",
            "run",
            str(images),
            "--lightly",
            str(lightly),
            *_args(case.configs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, THRESHER_PROGRESS="0"),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("thresher: error:"), proc.stderr
    check_message(" ".join(proc.stderr.split()), case)
    assert snapshot(lightly) == before


@pytest.mark.parametrize("case_id", ["pred-file-name-disagrees", "csv-rows-for-files-not-in-input"])
def test_the_flow_checks_before_it_writes(
    case_id: str, prefect_server: None, images: Path, tmp_path: Path
) -> None:
    """A platform run calls the flow, not the CLI: the flow refuses the file as early."""
    from thresher.flows import curate

    case = next(c for c in CASES if c.id == case_id)
    lightly = tmp_path / "lightly"
    case.apply(lightly)
    before = snapshot(lightly)
    with pytest.raises(ThresherError) as info:
        curate(input=str(images), lightly=str(lightly), **case.configs)
    assert snapshot(lightly) == before, "the flow wrote into LIGHTLY before refusing the file"
    check_message(str(info.value), case)
