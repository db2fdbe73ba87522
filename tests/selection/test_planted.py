"""One hand-worked planted example per strategy; the expected answer is derived in comments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from thresher.selection import select

E = {"type": "EMBEDDINGS"}


def line(*values: float) -> np.ndarray:
    """1-D points as an (N, 1) float32 embedding."""
    return np.asarray(values, np.float32)[:, None]


def run(strategies: list[dict[str, Any]], n: int, **kw: Any) -> list[int]:
    return select({"n_samples": n, "strategies": strategies}, **kw).tolist()


def test_diversity_farthest_point() -> None:
    # Points 0, 1, 2, 10, 11; mean 4.8. First pick: closest to the mean -> 2 (row 2).
    # Distances to {2}: 2, 1, 0, 8, 9 -> row 4 (11). Then min distances to {2, 11}:
    # 0 -> 2, 1 -> 1, 10 -> 1 -> row 0.
    x = line(0, 1, 2, 10, 11)
    assert run([{"input": E, "strategy": {"type": "DIVERSITY"}}], 3, embeddings=x) == [2, 4, 0]


def test_diversity_minimum_distance_stops() -> None:
    # As above; after [2, 4, 0] the rest (1 and 10) are 1 away from a pick: below 1.5, stop.
    x = line(0, 1, 2, 10, 11)
    s = {"type": "DIVERSITY", "stopping_condition_minimum_distance": 1.5}
    assert run([{"input": E, "strategy": s}], 5, embeddings=x) == [2, 4, 0]


def test_diversity_negative_strength_prefers_near_duplicates() -> None:
    # Strength -1: first pick is the most peripheral (1 + |x - 4.8| largest): 11, row 4.
    # Then the nearest to it: 10, row 3; then 2 (distance 8 to 10).
    x = line(0, 1, 2, 10, 11)
    s = {"type": "DIVERSITY", "strength": -1.0}
    assert run([{"input": E, "strategy": s}], 3, embeddings=x) == [4, 3, 2]


SCORES = {"type": "SCORES", "task": "t", "score": "uncertainty_margin"}


def test_weights_prefers_high_and_negative_strength_low() -> None:
    x = line(0, 1, 2, 3)
    sc = {"t": {"uncertainty_margin": np.array([0.2, 0.9, 0.5, 0.1])}}
    up = [{"input": SCORES, "strategy": {"type": "WEIGHTS"}}]
    down = [{"input": SCORES, "strategy": {"type": "WEIGHTS", "strength": -1}}]
    assert run(up, 4, embeddings=x, scores=sc) == [1, 2, 0, 3]
    assert run(down, 4, embeddings=x, scores=sc) == [3, 0, 2, 1]


def test_weights_max_sum() -> None:
    # Values 3, 1, 2, 5 and max_sum 6: take 5 (row 3), then only 1 still fits (row 1), stop.
    x = line(0, 1, 2, 3)
    md = {"v": np.array([3.0, 1.0, 2.0, 5.0])}
    s = {"type": "WEIGHTS", "stopping_condition_max_sum": 6}
    assert run(
        [{"input": {"type": "METADATA", "key": "v"}, "strategy": s}], 4, embeddings=x, metadata=md
    ) == [3, 1]


def test_weights_target_range_min_sum_turns_neutral() -> None:
    # Take 5 (row 3): the sum 5 reaches min_sum 4, the weights become neutral, and the
    # remaining rows tie: lowest index first.
    x = line(0, 1, 2, 3)
    md = {"v": np.array([3.0, 1.0, 2.0, 5.0])}
    s = {"type": "WEIGHTS", "target_range": {"min_sum": 4}}
    assert run(
        [{"input": {"type": "METADATA", "key": "v"}, "strategy": s}], 4, embeddings=x, metadata=md
    ) == [3, 0, 1, 2]


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("BIGGER", [3, 4]),
        ("BIGGER_EQUAL", [2, 3, 4]),
        ("SMALLER", [0, 1]),
        ("SMALLER_EQUAL", [0, 1, 2]),
    ],
)
def test_threshold_operations(operation: str, expected: list[int]) -> None:
    # Values 1..5 against threshold 3; alone, the survivors come in row order.
    x = line(0, 1, 2, 3, 4)
    md = {"v": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    s = {"type": "THRESHOLD", "threshold": 3, "operation": operation}
    assert (
        run(
            [{"input": {"type": "METADATA", "key": "v"}, "strategy": s}],
            10,
            embeddings=x,
            metadata=md,
        )
        == expected
    )


def test_balance_target_sums_to_one() -> None:
    # Rows 0-3 are a, 4-5 b, 6 c; target a: .5, b: .5 (c gets the remainder 0).
    # g = (target * (n + 1) + 1) / (count + 1):
    # n=0: a 1.5, b 1.5, other 1 -> tie a/b, lowest row 0.   n=1 (a1): a 1, b 2 -> row 4.
    # n=2 (a1 b1): a 1.25, b 1.25 -> row 1.                 n=3 (a2 b1): a 1, b 1.5 -> row 5.
    # n=4 (a2 b2): no b left; a 3.5/3 > other 1 -> row 2.     n=5 (a3 b2): a 1, other 1 -> row 3.
    # n=6: a 0.9, other 1 -> row 6.
    x = line(0, 1, 2, 3, 4, 5, 6)
    md = {"k": np.array(list("aaaabbc"), dtype=object)}
    s = {"type": "BALANCE", "target": {"a": 0.5, "b": 0.5}}
    entry = [{"input": {"type": "METADATA", "key": "k"}, "strategy": s}]
    assert run(entry, 4, embeddings=x, metadata=md) == [0, 4, 1, 5]
    assert run(entry, 7, embeddings=x, metadata=md) == [0, 4, 1, 5, 2, 3, 6]


def test_balance_remainder_goes_to_unlisted_classes() -> None:
    # target a: .2, remainder .8 to the "other" bucket (b and c together).
    # n=0: a 1.2, other 1.8 -> lowest other row, 4 (b).   n=1: a 1.4, other 1.3 -> row 0 (a).
    # n=2: a .8, other 1.7 -> row 5 (b).                   n=3: a .9, other 1.4 -> row 6 (c).
    x = line(0, 1, 2, 3, 4, 5, 6)
    md = {"k": np.array(list("aaaabbc"), dtype=object)}
    s = {"type": "BALANCE", "target": {"a": 0.2}}
    entry = [{"input": {"type": "METADATA", "key": "k"}, "strategy": s}]
    assert run(entry, 4, embeddings=x, metadata=md) == [4, 0, 5, 6]


def test_balance_on_class_distribution_predictions() -> None:
    from selection_fixtures import make_predictions

    # Predicted classes 0,0,0,0,1,1 (c0, c1); UNIFORM wants half each -> rows 0, 4, 1, 5.
    preds = {"cls": make_predictions(np.array([0, 0, 0, 0, 1, 1]), 2)}
    entry = [
        {
            "input": {"type": "PREDICTIONS", "task": "cls", "name": "CLASS_DISTRIBUTION"},
            "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
        }
    ]
    picks = run(entry, 4, embeddings=line(0, 1, 2, 3, 4, 5), predictions=preds)
    assert sorted(picks[:2]) == [0, 4] or sorted(picks[:2]) == [0, 5]
    assert sum(p >= 4 for p in picks) == 2


def test_similarity_nearest_to_queries() -> None:
    # Pool 0, 1, 5, 9, 10; query 9.5: distances 9.5, 8.5, 4.5, .5, .5 -> 3, 4, 2, 1, 0.
    x = line(0, 1, 5, 9, 10)
    entry = [
        {
            "input": {"type": "EMBEDDINGS", "query_embeddings": "q.csv"},
            "strategy": {"type": "SIMILARITY"},
        }
    ]
    assert run(entry, 5, embeddings=x, queries={"q.csv": line(9.5)}) == [3, 4, 2, 1, 0]


def test_similarity_queries_from_tag_filenames() -> None:
    x = line(0, 1, 5, 9, 10)
    names = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    entry = [
        {"input": {"type": "EMBEDDINGS", "tag_name": "mytag"}, "strategy": {"type": "SIMILARITY"}}
    ]
    # Query = row 0 (value 0): itself first, then 1, 5, 9, 10.
    assert run(entry, 5, embeddings=x, filenames=names, queries={"mytag": ["a.png"]}) == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_typicality_dense_first_and_outliers_pruned() -> None:
    # 0, .1, .2, .3, 5 with K=2: mean distance to the 2 nearest: .15, .1, .1, .15, 4.75.
    # Most typical first (ties by row): 1, 2, 0, 3, then the outlier 4.
    x = line(0, 0.1, 0.2, 0.3, 5)
    s = {"type": "TYPICALITY", "num_nearest_neighbors": 2}
    assert run([{"input": E, "strategy": s}], 5, embeddings=x) == [1, 2, 0, 3, 4]
    # Normalised typicality .1/.15 = .67 for rows 0 and 3, .02 for row 4: 0.5 drops row 4.
    s["stopping_condition_minimum_typicality"] = 0.5
    assert run([{"input": E, "strategy": s}], 5, embeddings=x) == [1, 2, 0, 3]


def test_random_input_with_weights_is_a_seeded_shuffle() -> None:
    x = line(*range(20))
    entry = [{"input": {"type": "RANDOM", "random_seed": 7}, "strategy": {"type": "WEIGHTS"}}]
    a = run(entry, 20, embeddings=x)
    assert sorted(a) == list(range(20)) and a != list(range(20))
    assert run(entry, 20, embeddings=x, seed=99) == a  # random_seed wins over seed
    entry[0]["input"] = {"type": "RANDOM"}
    assert run(entry, 20, embeddings=x, seed=1) != run(entry, 20, embeddings=x, seed=2)


def test_category_count_weights() -> None:
    from thresher.storage.predictions import TaskPredictions

    counts = np.array([[0, 1], [3, 0], [1, 1]], np.int32)
    preds = {
        "det": TaskPredictions(
            "det",
            "object-detection",
            np.arange(2),
            ["car", "bus"],
            counts.astype(np.float32),
            counts,
        )
    }
    # Objects per image: 1, 3, 2 -> rows 1, 2, 0. Only "bus": 1, 0, 1 -> rows 0, 2 tie, then 1.
    entry: list[dict[str, Any]] = [
        {
            "input": {"type": "PREDICTIONS", "task": "det", "name": "CATEGORY_COUNT"},
            "strategy": {"type": "WEIGHTS"},
        }
    ]
    assert run(entry, 3, embeddings=line(0, 1, 2), predictions=preds) == [1, 2, 0]
    entry[0]["input"]["categories"] = ["bus"]
    assert run(entry, 3, embeddings=line(0, 1, 2), predictions=preds) == [0, 2, 1]
