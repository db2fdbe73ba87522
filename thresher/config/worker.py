"""``worker_config``: what a run does, with the Lightly Worker's key names and defaults.

Both config generations are accepted (reference section 0): the final typed V4 keys and the
2022 flat keys (``method``, ``stopping_condition``, ...). Keys thresher does not implement yet
are accepted by the schema and refused by ``load_configs`` with a clear
``not supported yet: KEY`` when set to anything but their default (the table is
:data:`thresher.config.not_yet.NOT_YET`), so nothing is silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from thresher.config._base import StrictModel


class CorruptnessCheck(StrictModel):
    """``worker_config.corruptness_check``: the threshold of the corruption check."""

    corruption_threshold: float = Field(0.1, ge=0.0, le=1.0)


class InputExpiration(StrictModel):
    """``worker_config.datasource.input_expiration``: accepted for compatibility, unused."""

    min_days_to_expiration: int = Field(0, ge=0)
    handling_strategy: Literal["SKIP", "ABORT"] = "SKIP"


class Datasource(StrictModel):
    """``worker_config.datasource``: the Lightly datasource options (accepted, mostly unused)."""

    dataset_id: str = ""
    process_all: bool = False
    enable_datapool_update: bool = True
    bypass_verify: bool = False
    use_frame_count_metadata: bool = False
    use_redirected_read_url: bool = False
    input_expiration: InputExpiration | None = None


class Crops(StrictModel):
    """``worker_config.crops``: whether an object-level run writes the selected crops."""

    enable_upload: bool = True
    enable_upload_for_tasks: list[str] = Field(default_factory=list)


class Training(StrictModel):
    """``worker_config.training``: ``task_name`` for object-level training (not supported yet)."""

    task_name: str = ""


class StoppingCondition(StrictModel):
    """2022 key: ``n_samples`` is a count (int), a fraction (float in [0,1]) or -1 (off)."""

    n_samples: float = -1
    min_distance: float = -1.0


class ObjectLevel(StrictModel):
    """2022 ``worker_config.object_level``: the object task and the boxes' padding."""

    task_name: str = ""
    crop_dataset_name: str = ""
    padding: float = 0.0


class ActiveLearning(StrictModel):
    """2022 ``worker_config.active_learning`` (not supported yet; use a SCORES input)."""

    task_name: str = ""
    score_name: str = "uncertainty_margin"


class ScorerConfig(StrictModel):
    """2022 ``worker_config.scorer_config``: accepted for compatibility, unused."""

    frequency_penalty: float = 0.25
    min_score: float = 0.9


class LegacyDatapool(StrictModel):
    """2022 ``worker_config.datapool``: accepted for compatibility, unused."""

    name: str = ""
    keep_history: bool = True
    dataset_id: str = ""


#: The default ``near_duplicate_threshold`` (cosine distance), calibrated on a planted set of
#: real photos by ``benchmarks/near_duplicates.py`` (docs/selection.md, "Near duplicates").
NEAR_DUPLICATE_THRESHOLD = 0.175


class WorkerConfig(StrictModel):
    """The ``worker_config`` dict. Field names are the keys users write."""

    # What the run does.
    enable_corruptness_check: bool = True
    corruptness_check: CorruptnessCheck = Field(default_factory=CorruptnessCheck)
    remove_exact_duplicates: bool = True
    #: thresher's own keys: near duplicates are images whose embeddings' cosine distance is
    #: under the threshold (docs/selection.md, "Near duplicates"). They are always found and
    #: reported; ``remove_near_duplicates`` drops all but the first of each group before
    #: selection (counted as duplicates).
    remove_near_duplicates: bool = False
    near_duplicate_threshold: float = Field(NEAR_DUPLICATE_THRESHOLD, ge=0.0, lt=2.0)
    relevant_filenames_file: str = ""
    # Model inputs.
    enable_training: bool = False
    training: Training = Field(default_factory=Training)
    checkpoint: str = ""
    checkpoint_run_id: str = ""
    embeddings: str = ""
    normalize_embeddings: bool = True
    #: thresher's own key: who runs the embedding model. ``auto`` is OpenVINO on the CPU
    #: (same embeddings as PyTorch, about 5x faster) and PyTorch on a GPU.
    embedding_backend: Literal["auto", "torch", "openvino"] = "auto"
    #: thresher's own key: ``int8`` quantizes the model on the run's images (OpenVINO only;
    #: about 2.5x faster on a CPU) and states its fidelity; under a mean cosine of 0.995 to
    #: fp32 the run embeds in fp32 and says so.
    embedding_precision: Literal["fp32", "int8"] = "fp32"
    # Features.
    selected_sequence_length: int = Field(1, ge=1)
    use_datapool: bool = False
    datasource: Datasource = Field(default_factory=Datasource)
    pretagging: bool = False
    pretagging_upload: bool = False
    pretagging_debug: bool = False
    pretagging_config: str = ""
    crops: Crops = Field(default_factory=Crops)
    # Resources and output.
    num_processes: int = Field(-1, ge=-1)
    num_threads: int = Field(-1, ge=-1)
    cache_size: int = Field(-1, ge=-1)
    output_image_format: str = "png"
    output_image_size: int | list[int] = -1
    dump_dataset: bool = False
    dump_sampled_embeddings: bool = True
    upload_dataset: bool = False
    upload_report: bool = True
    shutdown_when_job_finished: bool = False
    n_example_images: int = Field(6, ge=0)
    #: thresher's own keys: the report's labeling-savings estimate, per task type
    #: (imageClassification, objectDetection, semanticSegmentation); thresher/reports/cost.py
    #: has the defaults and their sources.
    labeling_usd_per_image: dict[
        Literal["imageClassification", "objectDetection", "semanticSegmentation"],
        float,
    ] = Field(default_factory=dict)
    labeling_seconds_per_image: dict[
        Literal["imageClassification", "objectDetection", "semanticSegmentation"],
        float,
    ] = Field(default_factory=dict)
    #: thresher's own key: the report's UMAP maps, one per n_neighbors (Lightly's 5, 15, 50);
    #: [] skips UMAP (about 10 s for the first report on a machine, which compiles it).
    report_umap_neighbors: list[int] = Field(default_factory=lambda: [5, 15, 50], max_length=5)
    memory_requirement_in_GB: float = Field(2.0, gt=0)
    show_video_sampling_timeline: bool = True
    run_directory: str = ""
    # 2022 generation (reference 1.2); translated into selection_config when that is absent.
    method: Literal["coreset", "random"] | None = None
    stopping_condition: StoppingCondition | None = None
    object_level: ObjectLevel | None = None
    active_learning: ActiveLearning | None = None
    scorer: str = "object-frequency"
    scorer_config: ScorerConfig = Field(default_factory=ScorerConfig)
    datapool: LegacyDatapool | None = None
    append_weak_labels: bool = False

    @field_validator("n_example_images")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(
                "must be an even number (examples come in selected/removed pairs); "
                f"use {v + 1} or {v - 1}"
            )
        return v

    @field_validator("output_image_format")
    @classmethod
    def _format(cls, v: str) -> str:
        allowed = ("png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff")
        if v.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v.lower()

    @field_validator("run_directory")
    @classmethod
    def _run_dir(cls, v: str) -> str:
        if v and (v.startswith((".", "/")) or "/" in v or "\\" in v):
            raise ValueError("must be a plain folder name such as 'nightly-2026-11-25'")
        return v
