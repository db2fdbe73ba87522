"""Small builders shared by the platform and server tests."""

from __future__ import annotations

from thresher.platform import configs, datasets, datasources, users, workers
from thresher.platform.core import Platform
from thresher.platform.models import User
from thresher.wire import (
    CreateDockerWorkerRegistryEntryRequest,
    DatasetCreateRequest,
    DatasourceConfigLocal,
    DockerRunScheduledCreateRequest,
)

SELECTION = {"n_samples": 2}


def user(p: Platform, email: str = "alice@example.com") -> User:
    return users.add_user(p, email)[0]


def ready_dataset(p: Platform, u: User, name: str = "my-dataset") -> str:
    """A dataset with LOCAL INPUT and LIGHTLY datasources (the server cannot see them: OK)."""
    d = datasets.create(p, u, DatasetCreateRequest(name=name))
    datasources.put(p, u, d, DatasourceConfigLocal(purpose="INPUT", full_path="in"))
    datasources.put(p, u, d, DatasourceConfigLocal(purpose="LIGHTLY", full_path="out"))
    return d


def config(p: Platform, u: User) -> str:
    return configs.create(p, u, {}, {}, dict(SELECTION))


def schedule(
    p: Platform, u: User, d: str, priority: str = "MID", runs_on: list[str] | None = None
) -> str:
    from thresher.platform import runs

    req = DockerRunScheduledCreateRequest(
        config_id=config(p, u), priority=priority, runs_on=runs_on or []
    )
    return runs.schedule(p, u, d, req)


def worker(p: Platform, u: User, name: str = "gpu-1", labels: list[str] | None = None) -> str:
    return workers.register(p, u, CreateDockerWorkerRegistryEntryRequest(name=name, labels=labels))
