"""Every layer calls a stage by the one name of the stage table."""

import importlib
import inspect

import pytest

from thresher.caching import stage_dir, stage_key
from thresher.stages import STAGE_NAMES, STAGES, stage

# Lightly's DockerRunState names (reference section 7): a platform run reports these.
DOCKER_RUN_STATES = {
    "LOADING_DATASET",
    "CHECKING_CORRUPTNESS",
    "INITIALIZING_OBJECT_CROPS",
    "TRAINING",
    "EMBEDDING",
    "SAMPLING",
    "GENERATING_REPORT",
    "SAVING_RESULTS",
}


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_stage_module_function_task_and_cache_folder_share_the_name(name):
    module = importlib.import_module(f"thresher.stages.{name}")
    assert inspect.isfunction(getattr(module, name)), f"thresher.stages.{name}.{name}()"
    tasks = importlib.import_module("thresher.tasks")
    task = getattr(tasks, name)
    assert task.name == name
    assert stage_dir(stage_key(name, "x")).startswith(f".lightly/cache/{name}/")
    assert stage(name).run_state in DOCKER_RUN_STATES


def test_tasks_are_exactly_the_stages_and_take_keywords_only():
    tasks = importlib.import_module("thresher.tasks")
    assert sorted(tasks.__all__) == sorted((*STAGE_NAMES, *tasks.SIDE_TASKS))
    for name in tasks.__all__:
        params = inspect.signature(getattr(tasks, name).fn).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), name
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params), name


def test_stages_run_in_table_order_in_the_flow():
    source = inspect.getsource(importlib.import_module("thresher.flows.curate").curate)
    positions = [source.find(f"tasks.{s.name},") for s in STAGES]
    assert all(p > 0 for p in positions), dict(zip(STAGE_NAMES, positions, strict=True))
    assert positions == sorted(positions)
