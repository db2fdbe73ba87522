"""The database tables (SQLAlchemy 2 declarative models).

Ids are the wire's 24-hex strings, times Unix milliseconds (``BigInteger``), lists and config
dicts JSON. Datasource secrets and key ids live only in ``datasources.secret`` (a Fernet token).
The Alembic migrations in ``thresher/platform/migrations`` must produce exactly these tables
(``tests/platform/test_migrations.py`` compares them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(24)


class Base(DeclarativeBase):
    """Base of every table."""


class User(Base):
    """A person (or a team's service account) with tokens."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Token(Base):
    """An API token, stored as its sha256 (tokens are random, so no salt is needed)."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: Unix ms after which the token is refused; None = never (tokens made before migration 0004).
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Dataset(Base):
    """A dataset: a name, a type and (per purpose) datasources."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_datasets_user_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    img_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)
    #: Lightly's ``processedUntilTimestamp`` (Unix seconds; None = 0: nothing processed yet).
    processed_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Datasource(Base):
    """One datasource config of a dataset; at most one per purpose."""

    __tablename__ = "datasources"
    __table_args__ = (
        UniqueConstraint("dataset_id", "purpose", name="uq_datasources_dataset_purpose"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ID, ForeignKey("datasets.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    public: Mapped[dict[str, Any]] = mapped_column(JSON)  # the config less secrets and key ids
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet(JSON of secrets)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)


class WorkerConfig(Base):
    """The three configs of a scheduled run, validated when created."""

    __tablename__ = "worker_configs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"), index=True)
    worker_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    lightly_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    selection_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Worker(Base):
    """A registered worker; ``last_seen_at`` is its last heartbeat."""

    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_workers_user_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    labels: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    docker_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_seen_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)


class ScheduledRun(Base):
    """A scheduled run: OPEN, LOCKED (a worker took it), DONE or CANCELED."""

    __tablename__ = "scheduled_runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ID, index=True)
    config_id: Mapped[str] = mapped_column(ID)
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(Integer)  # CRITICAL=0 ... LOW=3: sorts first
    runs_on: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    worker_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    abort_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)


class Run(Base):
    """A run: exists once a worker took its scheduled run."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ID, index=True)
    config_id: Mapped[str] = mapped_column(ID)
    scheduled_id: Mapped[str] = mapped_column(ID, unique=True)
    worker_id: Mapped[str] = mapped_column(ID, index=True)
    docker_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)
    #: The Prefect flow run that executes this run (set by the worker; None when it ran the flow
    #: without a deployment).
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Artifact(Base):
    """A file a run wrote in its LIGHTLY datasource."""

    __tablename__ = "artifacts"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    storage_location: Mapped[str] = mapped_column(Text)  # relative to the LIGHTLY root
    created_at: Mapped[int] = mapped_column(BigInteger)


class Sample(Base):
    """A file of a dataset, added by a finished run; ``position`` is its bit in tag bitmasks."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("dataset_id", "file_name", name="uq_samples_dataset_file_name"),
        UniqueConstraint("dataset_id", "position", name="uq_samples_dataset_position"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ID, ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0, 1, 2... in insertion order
    file_name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Tag(Base):
    """A named subset of a dataset's samples: a bitmask over their positions (Lightly's)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_tags_dataset_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ID, ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    prev_tag_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    bit_mask_data: Mapped[str] = mapped_column(Text)  # "0x..." (bit k = sample k)
    tot_size: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_modified_at: Mapped[int] = mapped_column(BigInteger)


class DatasetShare(Base):
    """A user (by e-mail) a dataset is shared with; ``access_type`` is Lightly's ``WRITE``."""

    __tablename__ = "dataset_shares"
    dataset_id: Mapped[str] = mapped_column(
        ID, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    access_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
