import json

import pytest

from thresher.config import load_config_file, load_configs
from thresher.errors import ConfigError, NotSupportedYetError

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def test_first_steps_snippet_validates():
    cfg = load_configs(
        {"enable_corruptness_check": True, "remove_exact_duplicates": True},
        {"n_samples": 50, "strategies": DIVERSITY},
    )
    assert cfg.worker.enable_corruptness_check and cfg.selection.n_samples == 50


def test_defaults_follow_lightly():
    cfg = load_configs(None, {"n_samples": 5})
    w = cfg.worker
    assert (w.enable_corruptness_check, w.remove_exact_duplicates, w.normalize_embeddings) == (
        True,
        True,
        True,
    )
    assert w.corruptness_check.corruption_threshold == 0.1 and w.n_example_images == 6
    assert cfg.lightly.seed == 1 and cfg.lightly.loader.batch_size == 16


def test_unknown_key_suggests_closest():
    with pytest.raises(
        ConfigError,
        match=r"worker_config: Unknown key 'remove_exact_duplicate'\. Did you mean 'remove_exact_duplicates'",
    ):
        load_configs({"remove_exact_duplicate": True}, {"n_samples": 5})


def test_nested_unknown_key_has_full_path():
    with pytest.raises(
        ConfigError, match=r"worker_config\.corruptness_check: Unknown key 'threshold'"
    ):
        load_configs({"corruptness_check": {"threshold": 0.2}}, {"n_samples": 5})


def test_wrong_type_names_key_and_value():
    with pytest.raises(
        ConfigError, match=r"worker_config\.corruptness_check\.corruption_threshold.*Got 3"
    ):
        load_configs({"corruptness_check": {"corruption_threshold": 3}}, {"n_samples": 5})


@pytest.mark.parametrize("sel", [{}, {"n_samples": 5, "proportion_samples": 0.5}])
def test_n_samples_xor_proportion(sel):
    with pytest.raises(ConfigError, match="n_samples"):
        load_configs(None, sel)


def test_selection_config_is_required():
    with pytest.raises(ConfigError, match="selection_config is required"):
        load_configs(None, None)


@pytest.mark.parametrize("key,value", [("pretagging", True), ("append_weak_labels", True)])
def test_not_supported_yet_is_refused_not_ignored(key, value):
    with pytest.raises(NotSupportedYetError, match=f"not supported yet: worker_config.{key}"):
        load_configs({key: value}, {"n_samples": 5})


def test_legacy_2022_keys_translate():
    cfg = load_configs(
        {"method": "coreset", "stopping_condition": {"n_samples": 0.25, "min_distance": 0.1}}
    )
    assert cfg.selection.proportion_samples == 0.25
    strat = cfg.selection.effective_strategies()[0].strategy
    assert strat.type == "DIVERSITY" and strat.stopping_condition_minimum_distance == 0.1


def test_legacy_and_new_selection_conflict():
    with pytest.raises(ConfigError, match="both"):
        load_configs({"stopping_condition": {"n_samples": 10}}, {"n_samples": 5})


def test_training_with_embeddings_is_refused():
    with pytest.raises(ConfigError, match=r"enable_training and worker_config\.embeddings"):
        load_configs({"enable_training": True, "embeddings": "e.csv"}, {"n_samples": 5})


def test_config_file_yaml_and_unknown_top_key(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text(
        "worker_config:\n  remove_exact_duplicates: false\nselection_config:\n  n_samples: 3\n"
    )
    data = load_config_file(good)
    assert load_configs(**data).worker.remove_exact_duplicates is False
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"selection_configs": {"n_samples": 3}}))
    with pytest.raises(ConfigError, match="Did you mean 'selection_config'"):
        load_config_file(bad)


def test_effective_config_is_json_safe():
    cfg = load_configs(None, {"n_samples": 5})
    json.dumps(cfg.to_dict(), allow_nan=False)
    assert cfg.user_dict()["selection_config"] == {"n_samples": 5}


@pytest.mark.parametrize(
    ("sel", "match"),
    [
        ({"n_samples": 0}, r"n_samples: must be a count of at least 1.*0 would select nothing"),
        ({"n_samples": -5}, r"n_samples: .*-1 to select until every stopping condition.*got -5"),
        ({"proportion_samples": 0}, r"proportion_samples: .*\(0, 1\].*0 would select nothing"),
        ({"proportion_samples": 1.5}, r"proportion_samples: .*got 1.5"),
    ],
)
def test_sizes_that_select_nothing_or_make_no_sense_are_refused(sel, match):
    with pytest.raises(ConfigError, match=match):
        load_configs(None, sel)


def test_n_samples_minus_one_means_no_limit():
    assert load_configs(None, {"n_samples": -1}).selection.n_for(7) is None


def test_legacy_zero_count_is_refused_under_its_own_key():
    with pytest.raises(ConfigError, match=r"worker_config\.stopping_condition\.n_samples"):
        load_configs({"stopping_condition": {"n_samples": 0}})


EMBEDDINGS_TASK = [
    {"input": {"type": "EMBEDDINGS", "task": "det"}, "strategy": {"type": "DIVERSITY"}}
]


@pytest.mark.parametrize(
    ("configs", "key"),
    [
        (
            (None, {"n_samples": 5, "lightly_path_regex": ".*"}, None),
            "selection_config.lightly_path_regex",
        ),
        (
            ({"training": {"task_name": "det"}}, {"n_samples": 5}, None),
            r"worker_config\.training\.task_name",
        ),
        ((None, {"n_samples": 5}, {"model": {"width": 2}}), "lightly_config.model.width"),
    ],
)
def test_not_supported_yet_is_refused_when_the_config_loads(configs, key):
    # Refused by load_configs, before any stage runs (not when select runs).
    with pytest.raises(NotSupportedYetError, match=f"not supported yet: {key}"):
        load_configs(*configs)


def test_object_level_keys_load():  # docs/objects.md
    tiles = {"type": "TILING", "name": "det", "num_rows": 2, "num_cols": 2}
    named = load_configs(
        {"object_level": {"crop_dataset_name": "my-crops"}},
        {"n_samples": 5, "strategies": EMBEDDINGS_TASK, "auto_tasks": [tiles]},
    )
    assert named.worker.object_level.crop_dataset_name == "my-crops"  # the platform's crops
    cfg = load_configs(
        {"object_level": {"padding": 0.1}, "crops": {"enable_upload": False}},
        {"n_samples": 5, "strategies": EMBEDDINGS_TASK, "auto_tasks": [tiles]},
    )
    assert cfg.selection.strategies is not None
    assert cfg.selection.strategies[0].input.task == "det"  # type: ignore[union-attr]


def test_task_on_a_scores_input_is_not_refused():
    scores = {"type": "SCORES", "task": "clf", "score": "uncertainty_margin"}
    cfg = load_configs(
        None, {"n_samples": 5, "strategies": [{"input": scores, "strategy": {"type": "WEIGHTS"}}]}
    )
    assert cfg.selection.strategies is not None


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("c.yaml", "worker_config:\n  a: 1\n b: 2\n", "line 3, column 2: not valid YAML"),
        ("c.yml", "selection_config: {n_samples: [1, 2}\n", "line 1, column 36: not valid YAML"),
        ("c.json", '{"selection_config": {"n_samples": 3,}}', "line 1, column 38: not valid JSON"),
    ],
)
def test_malformed_config_file_names_file_line_and_column(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"{path}, {where}")
    assert info.value.__cause__ is not None


def test_config_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config_file(path)


def test_numpy_numbers_from_python_callers_are_accepted():
    # Strict types refuse True as a count and "4" as a number, but a count computed with NumPy
    # is what the caller meant.
    import numpy as np

    cfg = load_configs({"num_processes": np.int32(2)}, {"n_samples": np.int64(5)})
    assert cfg.selection.n_samples == 5 and type(cfg.selection.n_samples) is int
    assert load_configs(None, {"proportion_samples": np.float32(0.5)}).selection.proportion_samples
    with pytest.raises(ConfigError, match="n_samples"):
        load_configs(None, {"n_samples": np.bool_(True)})
