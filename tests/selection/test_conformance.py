"""One suite run over every registered strategy (cf. scikit-learn's common estimator checks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from selection_fixtures import CASES, N, make_inputs

from thresher.errors import InputError
from thresher.selection import REGISTRY, select


def test_every_registered_strategy_has_a_case() -> None:
    assert set(REGISTRY) == set(CASES)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        REGISTRY["NEW"] = REGISTRY["DIVERSITY"]  # type: ignore[index]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> dict[str, Any]:
    return CASES[request.param]


def _run(case: dict[str, Any], n: int, **kw: Any) -> np.ndarray:
    inputs = make_inputs()
    inputs.update(kw)
    return select({"n_samples": n, "strategies": [case]}, **inputs)


def test_output_size_dtype_and_uniqueness(case: dict[str, Any]) -> None:
    picks = _run(case, 10)
    assert picks.dtype == np.int64 and picks.ndim == 1
    assert 0 < len(picks) <= 10
    assert len(set(picks.tolist())) == len(picks)
    assert picks.min() >= 0 and picks.max() < N
    if case["strategy"]["type"] != "THRESHOLD":
        assert len(picks) == 10


def test_deterministic(case: dict[str, Any]) -> None:
    assert np.array_equal(_run(case, 12), _run(case, 12))


def test_n_larger_than_pool_returns_the_whole_pool(case: dict[str, Any]) -> None:
    picks = _run(case, 10 * N)
    if case["strategy"]["type"] == "THRESHOLD":
        # Everything that passes the threshold, nothing else.
        m = make_inputs()["metadata"]["m.num"]
        assert set(picks.tolist()) == set(np.flatnonzero(m > 0.3).tolist())
    else:
        assert sorted(picks.tolist()) == list(range(N))


def test_nan_embeddings_rejected(case: dict[str, Any]) -> None:
    x = make_inputs()["embeddings"].copy()
    x[7, 1] = np.nan
    with pytest.raises(InputError, match="row 7"):
        _run(case, 5, embeddings=x)


def test_budget_rounding_to_zero_picks_nothing(case: dict[str, Any]) -> None:
    # n_samples=0 is refused by the config; a fraction that rounds to 0 rows is not.
    picks = select({"proportion_samples": 0.1 / N, "strategies": [case]}, **make_inputs())
    assert len(picks) == 0


def test_preselected_never_returned(case: dict[str, Any]) -> None:
    pre = np.array([0, 1, 2, 3])
    picks = _run(case, 10 * N, preselected=pre)
    assert not set(picks.tolist()) & {0, 1, 2, 3}


def test_pairs_allowed_by_the_config_are_the_registry_kinds() -> None:
    # One declaration: a strategy's config class names the input kinds it accepts, the
    # registry and the config's pair check both read it.
    from thresher.config.selection import STRATEGY_CLASSES, strategy_type

    assert [strategy_type(c) for c in STRATEGY_CLASSES] == list(REGISTRY)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.input_kinds == spec.config.accepts
