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


@pytest.mark.parametrize(
    "key,value", [("pretagging", True), ("use_datapool", True), ("selected_sequence_length", 4)]
)
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
