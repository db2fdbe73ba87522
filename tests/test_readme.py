"""The README's strategy examples are valid selection configs (docs that cannot drift)."""

import json
import re
from pathlib import Path

import pytest

from thresher.config import load_configs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
ROWS = re.findall(r"^\| ([A-Z]+) \| `(\{.*?\})`", README, flags=re.M)


def test_every_strategy_has_an_example():
    assert {name for name, _ in ROWS} == {"DIVERSITY", "TYPICALITY", "SIMILARITY", "WEIGHTS",
                                           "THRESHOLD", "BALANCE", "RANDOM"}


@pytest.mark.parametrize("name,example", ROWS)
def test_example_validates(name, example):
    entry = json.loads(example)
    cfg = load_configs(None, {"n_samples": 10, "strategies": [entry]})
    assert cfg.selection.strategies[0].strategy.type in (name, "WEIGHTS")
