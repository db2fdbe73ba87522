"""The platform's wire format: Lightly's ``/v1`` models, and the worker routes' models.

One definition for both ends: the server (``thresher.server``) answers with these models and
our client (``thresher.client``) and worker (``thresher.worker``) parse them. Field names are
snake_case in Python and camelCase on the wire (``model_dump(by_alias=True)``), as in Lightly's
generated client; ids are 24 hex characters; timestamps are Unix milliseconds. Lightly's real
client (``lightly<1.6``) validates responses with ``extra="forbid"``, so a response carries only
the fields defined here, and None values are dropped (``exclude_none=True``).

Facts: ``shared/reference/platform_api.md`` sections 1-6 and 11.
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: Every id on the wire: 24 lower-case hex characters (a MongoDB ObjectId's shape).
ID_PATTERN = r"^[a-f0-9]{24}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
#: A Prefect id (a UUID, e.g. a flow run's).
PREFECT_ID_PATTERN = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def new_id() -> str:
    """A new id: 24 random hex characters."""
    return secrets.token_hex(12)


def now_ms() -> int:
    """Now, in Unix milliseconds (the wire's time unit)."""
    return int(time.time() * 1000)


class WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, unknown fields refused, enums as values."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON body: camelCase keys, None values dropped."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- enums (values exactly as Lightly's) ---------------------------------------------------


class DatasetType(StrEnum):
    """``DatasetType``: what a dataset holds."""

    IMAGES = "Images"
    VIDEOS = "Videos"
    CROPS = "Crops"


class DatasourcePurpose(StrEnum):
    """``DatasourcePurpose``: INPUT is read-only raw data; LIGHTLY holds ``.lightly/``."""

    INPUT_OUTPUT = "INPUT_OUTPUT"
    INPUT = "INPUT"
    LIGHTLY = "LIGHTLY"


class DockerRunScheduledPriority(StrEnum):
    """Scheduling priority; CRITICAL runs first."""

    LOW = "LOW"
    MID = "MID"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class DockerRunScheduledState(StrEnum):
    """A scheduled run: OPEN until a worker takes it, then LOCKED, then DONE (or CANCELED)."""

    OPEN = "OPEN"
    LOCKED = "LOCKED"
    DONE = "DONE"
    CANCELED = "CANCELED"


class DockerRunState(StrEnum):
    """A run's state as it goes (the names of Lightly's ``DockerRunState`` that thresher uses)."""

    STARTED = "STARTED"
    INITIALIZING = "INITIALIZING"
    LOADING_DATASET = "LOADING_DATASET"
    LOADING_METADATA = "LOADING_METADATA"
    LOADING_PREDICTION = "LOADING_PREDICTION"
    CHECKING_CORRUPTNESS = "CHECKING_CORRUPTNESS"
    INITIALIZING_OBJECT_CROPS = "INITIALIZING_OBJECT_CROPS"
    TRAINING = "TRAINING"
    EMBEDDING = "EMBEDDING"
    SAMPLING = "SAMPLING"
    SAVING_RESULTS = "SAVING_RESULTS"
    GENERATING_REPORT = "GENERATING_REPORT"
    UPLOADING_ARTIFACTS = "UPLOADING_ARTIFACTS"
    UPLOADED_ARTIFACTS = "UPLOADED_ARTIFACTS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    ABORTED = "ABORTED"


#: Run states after which nothing changes.
END_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "ABORTED"})


class DockerWorkerState(StrEnum):
    """A registered worker's state."""

    OFFLINE = "OFFLINE"
    CRASHED = "CRASHED"
    IDLE = "IDLE"
    BUSY = "BUSY"


class DockerRunArtifactType(StrEnum):
    """What an artifact of a run is."""

    LOG = "LOG"
    MEMLOG = "MEMLOG"
    CHECKPOINT = "CHECKPOINT"
    REPORT_PDF = "REPORT_PDF"
    REPORT_JSON = "REPORT_JSON"
    REPORT_V2_JSON = "REPORT_V2_JSON"
    CORRUPTNESS_CHECK_INFORMATION = "CORRUPTNESS_CHECK_INFORMATION"
    SEQUENCE_INFORMATION = "SEQUENCE_INFORMATION"
    RELEVANT_FILENAMES = "RELEVANT_FILENAMES"


#: The file a run writes for each artifact type, in ``.lightly/runs/<run id>/``.
ARTIFACT_FILES: dict[str, str] = {
    "LOG": "log.txt",
    "MEMLOG": "memlog.txt",
    "CHECKPOINT": "checkpoint.ckpt",
    "REPORT_PDF": "report.pdf",
    "REPORT_JSON": "report.json",
    "REPORT_V2_JSON": "report_v2.json",
    "CORRUPTNESS_CHECK_INFORMATION": "corruptness_check_information.json",
    "SEQUENCE_INFORMATION": "sequence_information.json",
}


# --- generic responses ----------------------------------------------------------------------


class CreateEntityResponse(WireModel):
    """What creating anything returns."""

    id: Id


class ApiErrorResponse(WireModel):
    """Every error body: a code such as ``FORBIDDEN`` or ``DATASET_NAME_EXISTS``, and a message."""

    code: str
    error: str
    request_id: str | None = None
    error_labels: list[str] | None = None


# --- datasets -------------------------------------------------------------------------------


class DatasetCreateRequest(WireModel):
    """``POST /v1/datasets``."""

    name: str = Field(min_length=3)
    type: DatasetType = DatasetType.IMAGES
    img_type: Literal["full", "thumbnail", "meta"] | None = None
    creator: str | None = None
    parent_dataset_id: Id | None = None


class DatasetData(WireModel):
    """A dataset as ``GET /v1/datasets`` and ``GET /v1/datasets/{id}`` return it."""

    id: Id
    name: str
    user_id: str  # the owner
    type: DatasetType
    n_samples: int = 0
    size_in_bytes: int = 0
    created_at: int
    last_modified_at: int
    img_type: Literal["full", "thumbnail", "meta"] | None = "full"
    access_type: Literal["WRITE"] | None = None
    datasource_processed_until_timestamp: int | None = None


# --- datasources (PUT /v1/datasets/{d}/datasource; one config per purpose) ------------------


#: Lightly's pattern for a KMS key ARN (the datasource configs' constraints are Lightly's: a
#: value its client could not send, or not read back, is refused when it is set).
KMS_KEY_PATTERN = r"^arn:aws:kms:[a-zA-Z0-9-]*:[0-9]{12}:key.+$"


class _DatasourceBase(WireModel):
    purpose: DatasourcePurpose = DatasourcePurpose.INPUT_OUTPUT
    full_path: str
    thumb_suffix: str | None = None
    id: Id | None = None


class DatasourceConfigLocal(_DatasourceBase):
    """A folder below the worker's mount (``--input-mount`` / ``--lightly-mount``)."""

    type: Literal["LOCAL"] = "LOCAL"
    web_server_location: str | None = Field(default=None, pattern=r"^https?://.+$")


class DatasourceConfigS3(_DatasourceBase):
    """S3 with an access key."""

    type: Literal["S3"] = "S3"
    s3_region: str
    s3_access_key_id: str = Field(min_length=1)
    s3_secret_access_key: str = Field(min_length=1)
    s3_server_side_encryption_kms_key: str | None = Field(
        default=None, alias="s3ServerSideEncryptionKMSKey", pattern=KMS_KEY_PATTERN
    )


class DatasourceConfigS3DelegatedAccess(_DatasourceBase):
    """S3 through STS AssumeRole with an external id."""

    type: Literal["S3DelegatedAccess"] = "S3DelegatedAccess"
    s3_region: str
    s3_external_id: str = Field(min_length=10, pattern=r"^[a-zA-Z0-9_+=,.@:/-]+$")
    s3_arn: str = Field(min_length=12, alias="s3ARN", pattern=r"^arn:aws:iam::[0-9]{12}:role.+$")
    s3_server_side_encryption_kms_key: str | None = Field(
        default=None, alias="s3ServerSideEncryptionKMSKey", pattern=KMS_KEY_PATTERN
    )


class DatasourceConfigGCS(_DatasourceBase):
    """Google Cloud Storage with a service-account JSON key (as a string)."""

    type: Literal["GCS"] = "GCS"
    gcs_project_id: str = Field(min_length=1)
    gcs_credentials: str


class DatasourceConfigAzure(_DatasourceBase):
    """Azure Blob storage; ``account_key`` holds the SAS token (as Lightly's client sends it)."""

    type: Literal["AZURE"] = "AZURE"
    account_name: str = Field(min_length=1)
    account_key: str = Field(min_length=1)


DatasourceConfig = Annotated[
    DatasourceConfigLocal
    | DatasourceConfigS3
    | DatasourceConfigS3DelegatedAccess
    | DatasourceConfigGCS
    | DatasourceConfigAzure,
    Field(discriminator="type"),
]

#: The fields of each datasource type that are secrets: never returned by a read route (they
#: come back as :data:`SECRET_MASK`), stored encrypted, never logged.
#: What a read route returns in place of a secret. Not the empty string: Lightly's client
#: requires ``s3SecretAccessKey`` and ``accountKey`` to be non-empty when it parses a config.
SECRET_MASK = "********"

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "LOCAL": (),
    "S3": ("s3_secret_access_key",),
    "S3DelegatedAccess": (),
    "GCS": ("gcs_credentials",),
    "AZURE": ("account_key",),
}


class DatasourceVerifyErrors(WireModel):
    """What failed, per permission (Lightly's ``DatasourceConfigVerifyDataErrors``)."""

    can_read: str | None = None
    can_write: str | None = None
    can_list: str | None = None
    can_overwrite: str | None = None


class DatasourceRawSamplesPermissions(WireModel):
    """``GET /v1/datasets/{d}/datasource/verify``: each permission checked on the bucket.

    ``errors`` is present only when a check failed; on the wire its keys are camelCase
    (``canRead``...), and ``model_dump()`` gives the snake_case dict Lightly's
    ``list_datasource_permissions()`` returns.
    """

    can_read: bool
    can_write: bool
    can_list: bool
    can_overwrite: bool
    errors: DatasourceVerifyErrors | None = None


# --- workers and runs -----------------------------------------------------------------------


class DockerWorkerRegistryEntryData(WireModel):
    """A registered worker."""

    id: Id
    user_id: str
    name: str = Field(min_length=3)
    worker_type: Literal["FULL"] = "FULL"
    state: DockerWorkerState
    created_at: int
    last_modified_at: int
    labels: list[str] = Field(default_factory=list)
    is_default: bool | None = None
    docker_version: str | None = None


class CreateDockerWorkerRegistryEntryRequest(WireModel):
    """``POST /v1/docker/worker``: register (or re-use) a worker by name."""

    name: str = Field(min_length=3)
    worker_type: Literal["FULL"] = "FULL"
    labels: list[str] | None = None
    creator: str | None = None
    docker_version: str | None = None


class DockerWorkerConfigV3Create(WireModel):
    """``POST /v1/docker/worker/config/v3``: the configs a scheduled run uses.

    The three configs are the same dicts ``thresher run --config`` takes; they are validated
    when the run is scheduled, so a bad key fails then and not on the worker.
    """

    config: dict[str, Any]  # {"worker_config": {...}, "lightly_config": {...}}
    selection_config: dict[str, Any] | None = Field(default=None, alias="selectionConfig")
    creator: str | None = None


class DockerRunScheduledCreateRequest(WireModel):
    """``POST /v1/datasets/{d}/docker/worker/schedule``."""

    config_id: Id
    priority: DockerRunScheduledPriority = DockerRunScheduledPriority.MID
    runs_on: list[str] = Field(default_factory=list)
    creator: str | None = None


class DockerRunScheduledData(WireModel):
    """A scheduled run."""

    id: Id
    dataset_id: Id
    config_id: Id
    priority: DockerRunScheduledPriority
    runs_on: list[str]
    state: DockerRunScheduledState
    created_at: int
    last_modified_at: int
    user_id: str | None = None
    owner: str | None = None


class DockerRunArtifactData(WireModel):
    """A file a run produced; ``/v1/docker/runs/{r}/artifacts/{a}/readurl`` downloads it."""

    id: Id
    type: DockerRunArtifactType
    file_name: str
    # Lightly's enum: where the file lives. Ours are always in the LIGHTLY datasource.
    storage_location: Literal["LIGHTLY", "DATASOURCE"] | None = "LIGHTLY"
    created_at: int | None = None


class DockerRunData(WireModel):
    """A run (exists once a worker took its scheduled run)."""

    id: Id
    user_id: str
    docker_version: str
    state: DockerRunState
    created_at: int
    last_modified_at: int
    dataset_id: Id | None = None
    config_id: Id | None = None
    scheduled_id: Id | None = None
    message: str | None = None
    artifacts: list[DockerRunArtifactData] | None = None
    archived: bool | None = None


# --- worker routes (thresher's own; Lightly's worker protocol is not public) ----------------


class WorkerHeartbeat(WireModel):
    """``POST /v1/docker/worker/{w}/heartbeat``: the worker is alive (and IDLE or BUSY)."""

    state: DockerWorkerState


class ClaimedRun(WireModel):
    """``POST /v1/docker/worker/{w}/claim`` (200; 204 when nothing waits): a run to do.

    The datasources come with their secrets, over the worker's authenticated connection: this is
    how credentials reach a run out of band, never as Prefect flow parameters.
    """

    run: DockerRunData
    scheduled: DockerRunScheduledData
    dataset: DatasetData
    worker_config: dict[str, Any]
    selection_config: dict[str, Any]
    lightly_config: dict[str, Any]
    input: DatasourceConfig
    lightly: DatasourceConfig
    #: The Prefect API the worker's flow reports to (None: the worker's own, or an ephemeral one).
    prefect_api_url: str | None = None


class RunStateUpdate(WireModel):
    """``PUT /v1/docker/runs/{r}/state``: the worker reports progress, or the end.

    ``prefect_flow_run_id`` (``prefectFlowRunId``): the Prefect flow run executing the run, sent
    once the worker created it; the web page links to it in the Prefect UI.
    """

    state: DockerRunState
    message: str | None = None
    prefect_flow_run_id: str | None = Field(default=None, pattern=PREFECT_ID_PATTERN)


class ArtifactCreateRequest(WireModel):
    """``POST /v1/docker/runs/{r}/artifacts``: a file the run wrote in its LIGHTLY location.

    ``storage_location`` is relative to the LIGHTLY datasource's root, e.g.
    ``.lightly/runs/<run id>/report.pdf``.
    """

    type: DockerRunArtifactType
    file_name: str
    storage_location: str


class ReadUrlResponse(WireModel):
    """Not a model in Lightly (the route returns a bare JSON string); kept for our own routes."""

    url: str


# --- samples and tags (platform_api.md section 7) ------------------------------------------

#: Lightly's tag-name pattern (``TagCreateRequest.name``), at least 3 characters in all.
TAG_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9 .:;=@_-]+$"
#: A bitmask as Lightly writes it: ``hex(int)`` (bit k, LSB first, is the k-th sample).
BITMASK_PATTERN = r"^0x[a-f0-9]+$"


class TagData(WireModel):
    """``TagData``: a named subset of the dataset's samples as a bitmask over their order.

    ``prev_tag_id`` is the parent (a superset), None for ``initial-tag``; ``tot_size`` is the
    dataset's sample count when the tag was written; ``run_id`` the run that made it.
    """

    id: Id
    dataset_id: Id
    prev_tag_id: Id | None
    name: Annotated[str, Field(min_length=3)]
    bit_mask_data: Annotated[str, Field(pattern=BITMASK_PATTERN)]
    tot_size: int
    created_at: int
    last_modified_at: int | None = None
    run_id: Id | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON body; ``prevTagId`` is required (null for a root tag), so it stays."""
        body = super().wire()
        body["prevTagId"] = self.prev_tag_id
        return body


class TagCreateRequest(WireModel):
    """``POST /v1/datasets/{d}/tags`` (Lightly's ``TagCreateRequest``; ``creator`` ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_enum_values=True
    )

    name: Annotated[str, Field(pattern=TAG_NAME_PATTERN)]
    prev_tag_id: Id
    bit_mask_data: Annotated[str, Field(pattern=BITMASK_PATTERN)]
    tot_size: int
    query_tag_id: Id | None = None
    preselected_tag_id: Id | None = None
    run_id: Id | None = None


class RunCrops(WireModel):
    """The crops an object-level run wrote: ``.lightly/crops/<task>/<name>`` in LIGHTLY.

    ``filenames`` is the run's ``filenames/selected_crops.txt`` (names relative to the task's
    crops folder), in pick order.
    """

    task: str
    filenames: list[str]


class RunSelectionRequest(WireModel):
    """``POST /v1/docker/runs/{r}/selection`` (ours): a completed run's picks, in pick order.

    The worker sends ``filenames/selected.txt``; the server adds the new files to the dataset's
    samples and writes the run's tag. An object-level run that wrote its crops also sends
    ``crops`` (thresher's own field): they fill the run's crops dataset.
    """

    filenames: list[str]
    crops: RunCrops | None = None


# --- sharing (platform_api.md section 10) ---------------------------------------------------


class SharedAccessConfigCreateRequest(WireModel):
    """``POST /v1/datasets/{d}/collaboration/access``: who the dataset is shared with.

    ``users`` (e-mails) replaces the list; ``[]`` (or none) revokes everyone. ``WRITE`` is the
    only access type, as in Lightly; ``teams`` must stay empty (thresher has no teams).
    """

    access_type: Literal["WRITE"]
    users: list[str] | None = None
    teams: list[str] | None = None
    creator: str | None = None


class SharedAccessConfigData(WireModel):
    """``GET /v1/datasets/{d}/collaboration/access`` answers a list of these (one, or none)."""

    id: Id
    owner: str  # the owner's user id
    access_type: Literal["WRITE"]
    users: list[str]  # e-mails
    teams: list[str]
    created_at: int
    last_modified_at: int


# --- exports, sample read URLs, embeddings (platform_api.md sections 8 and 9) ---------------


class FileNameFormat(StrEnum):
    """``fileNameFormat`` of ``.../export/basic/filenames``: what each line holds."""

    NAME = "NAME"
    DATASOURCE_FULL = "DATASOURCE_FULL"
    REDIRECTED_READ_URL = "REDIRECTED_READ_URL"


class FilenameAndReadUrl(WireModel):
    """One line of ``.../export/basic/filenamesAndReadUrls`` (Lightly's keys)."""

    file_name: str
    read_url: str
    datasource_url: str


# --- datasource listing (datasources_api.py: .../datasource/list, processedUntilTimestamp) --


class DatasourceRawSamplesDataRow(WireModel):
    """One listed file: its name relative to the datasource, and a read URL for it."""

    file_name: str
    read_url: str


class DatasourceRawSamplesData(WireModel):
    """One page of a datasource listing; pass ``cursor`` back while ``has_more``."""

    has_more: bool
    cursor: str
    data: list[DatasourceRawSamplesDataRow]


class DivideAndConquerCursorData(WireModel):
    """The first cursor of each shard of a listing (``.../list/dnc``)."""

    cursors: list[str]


class DatasourceProcessedUntilTimestampRequest(WireModel):
    """The body of ``PUT .../datasource/processedUntilTimestamp`` (Unix seconds)."""

    processed_until_timestamp: int = Field(ge=0)


class DatasourceProcessedUntilTimestampResponse(WireModel):
    """The answer of ``GET .../datasource/processedUntilTimestamp`` (Unix seconds)."""

    processed_until_timestamp: int = Field(ge=0)


class LabelStudioTaskData(WireModel):
    """``data`` of a Label Studio task: ``image`` is a URL Label Studio can fetch."""

    image: str
    lightly_file_name: str | None = None


class LabelStudioTask(WireModel):
    """A task in Label Studio's import format (``[{"id": 0, "data": {"image": url}}]``)."""

    id: int
    data: LabelStudioTaskData


class LabelBoxDataRow(WireModel):
    """A Labelbox v3 data row: ``{"externalId": name, "imageUrl": url}`` (deprecated by Lightly)."""

    external_id: str
    image_url: str


class LabelBoxV4DataRow(WireModel):
    """A Labelbox v4 data row; its keys are snake_case on the wire, as Labelbox's SDK wants."""

    model_config = ConfigDict(
        alias_generator=None, populate_by_name=True, extra="forbid", use_enum_values=True
    )

    row_data: str
    global_key: str | None = None
    media_type: str | None = None


class DatasetEmbeddingData(WireModel):
    """``DatasetEmbeddingData``: one embeddings CSV of a dataset (a completed run's)."""

    id: Id
    name: str
    is_processed: bool
    created_at: int
    is2d: bool | None = None
