"""The pipeline's stages as plain functions, and the one table that names them.

Each stage reads its inputs from the LIGHTLY location, writes its output under a
content-addressed key there (``thresher.caching``), and returns a small, picklable summary. No
Prefect here: ``thresher.tasks`` wraps each stage as a task and ``thresher.flows`` composes them.

A stage has one name everywhere: its module ``thresher.stages.<name>``, the function
``<name>()`` in it, the task ``thresher.tasks.<name>`` (Prefect task name ``<name>``), its cache
folder ``.lightly/cache/<name>/``, the log line ``stage <name>`` and the timing row of the report.
``tests/stages/test_stage_table.py`` holds every layer to this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One row of the stage table.

    Attributes:
        name: The stage's one name.
        run_state: The Lightly ``DockerRunState`` a platform run reports while it runs.
        does: What it does, in a line.
    """

    name: str
    run_state: str
    does: str


STAGES: tuple[Stage, ...] = (
    Stage("list_input", "LOADING_DATASET", "list INPUT, apply relevant_filenames_file"),
    Stage("corruption_check", "CHECKING_CORRUPTNESS", "decode and hash every file once"),
    Stage("deduplicate", "CHECKING_CORRUPTNESS", "drop byte-identical files"),
    Stage("train", "TRAINING", "SimCLR on the kept images (enable_training)"),
    Stage("objects", "INITIALIZING_OBJECT_CROPS", "object level: the boxes become the samples"),
    Stage("embed", "EMBEDDING", "embed the kept images in committed shards"),
    Stage("near_duplicates", "EMBEDDING", "find (and optionally drop) near duplicates"),
    Stage("select", "SAMPLING", "run the selection strategies"),
    Stage("report", "GENERATING_REPORT", "report.pdf, report.json, plots/"),
    Stage("write_results", "SAVING_RESULTS", "file lists, embeddings, config.json, tags"),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    """The row of stage ``name``.

    Raises:
        KeyError: No stage has that name.
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage named {name!r}; the stages are {', '.join(STAGE_NAMES)}")
