"""The README's strategy examples are valid selection configs (docs that cannot drift)."""

import json
import re
from pathlib import Path

import pytest

from thresher.config import load_configs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
ROWS = re.findall(r"^\| ([A-Z]+) \| `(\{.*?\})`", README, flags=re.M)


def test_every_strategy_has_an_example():
    assert {name for name, _ in ROWS} == {
        "DIVERSITY",
        "TYPICALITY",
        "COVERAGE",
        "SIMILARITY",
        "WEIGHTS",
        "THRESHOLD",
        "BALANCE",
        "RANDOM",
    }


@pytest.mark.parametrize("name,example", ROWS)
def test_example_validates(name, example):
    entry = json.loads(example)
    cfg = load_configs(None, {"n_samples": 10, "strategies": [entry]})
    assert cfg.selection.strategies[0].strategy.type in (name, "WEIGHTS")


USE = README[README.index("## Use") : README.index("### What a run does")]


def _run_options() -> set[str]:
    from thresher.cli import build_parser

    parser = build_parser()
    run = next(
        a for a in parser._actions if getattr(a, "choices", None) and "run" in a.choices
    ).choices["run"]
    return {flag for action in run._actions for flag in action.option_strings}


def test_use_section_shows_the_example_command_and_help():
    assert "thresher example " in USE and "thresher --help" in USE


def test_every_run_flag_in_the_readme_exists():
    # Each command with its continuation lines.
    documented = set(re.findall(r"thresher run (?:[^\n\\]|\\\n)*", README))
    flags = {f for line in documented for f in re.findall(r"(--[a-z][a-z-]+)", line)}
    assert flags, "the README shows no thresher run command"
    assert flags <= _run_options(), flags - _run_options()


def test_interrupt_line_is_the_one_the_command_prints():
    from thresher.cli_interrupt import MESSAGE

    assert MESSAGE in " ".join(USE.split()).replace("` `", " ")
