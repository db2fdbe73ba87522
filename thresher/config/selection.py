"""The ``selection_config`` users pass to a run: how many samples to pick and how.

One class per input type and per strategy type, joined in discriminated unions on ``type``, so
that an impossible combination (a ``threshold`` on a DIVERSITY strategy) is an unknown-key error
and an input/strategy pair that makes no sense (DIVERSITY on SCORES) is refused with the list of
strategies that input allows.

Example:
    >>> from thresher.config._base import parse_config
    >>> cfg = parse_config(SelectionConfig, {
    ...     "n_samples": 100,
    ...     "strategies": [
    ...         {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
    ...         {"input": {"type": "METADATA", "key": "lightly.sharpness"},
    ...          "strategy": {"type": "THRESHOLD", "threshold": 20, "operation": "BIGGER"}},
    ...     ],
    ... }, "selection_config")
    >>> cfg.n_for(1000)
    100
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, field_validator, model_validator

from thresher.config._base import StrictModel

STRENGTH_LIMIT = 1e9

# The built-in metadata computed from the images (thresher.selection.image_metadata).
LightlyMetadataKey = Literal[
    "lightly.sharpness",
    "lightly.snr",
    "lightly.sizeInBytes",
    "lightly.uniformRowRatio",
]
LIGHTLY_METADATA_KEYS: tuple[str, ...] = get_args(LightlyMetadataKey)
# thresher's own built-in quality scores, in [0, 1], higher is worse (thresher.checks.quality).
ThresherMetadataKey = Literal[
    "thresher.dark_score",
    "thresher.bright_score",
    "thresher.blur_score",
    "thresher.low_information_score",
    "thresher.odd_aspect_ratio_score",
    "thresher.tiny_score",
]
THRESHER_METADATA_KEYS: tuple[str, ...] = get_args(ThresherMetadataKey)
#: Prefixes of the built-in metadata keys (computed from the images, not read from files).
BUILTIN_METADATA_PREFIXES = ("lightly.", "thresher.")

# The active-learning scores computed from predictions (thresher.storage.predictions).
ScoreName = Literal["uncertainty_least_confidence", "uncertainty_margin", "uncertainty_entropy"]
SCORE_NAMES: tuple[str, ...] = get_args(ScoreName)

# What an input gives a strategy. Each input says which kinds it can give (``kinds()``),
# each strategy which kinds it takes (``accepts``); a pair is valid when they meet.
InputKind = Literal["embeddings", "queries", "numeric", "categorical", "distribution"]

# ----------------------------------------------------------------------------------- inputs


class EmbeddingsInput(StrictModel):
    """The run's own embeddings, or (for SIMILARITY) query embeddings.

    ``tag_name`` names a tag file ``.lightly/tags/<tag_name>.txt`` in the LIGHTLY location whose
    samples are the queries; ``query_embeddings`` (thresher extension) names an embeddings CSV
    under ``.lightly/embeddings/`` (``filenames,embedding_0..,labels``) whose rows are the
    queries. ``dataset_id`` is accepted for Lightly compatibility; the tag is looked up in this
    run's LIGHTLY location.
    """

    type: Literal["EMBEDDINGS"]
    dataset_id: str | None = None
    tag_name: Annotated[str, Field(min_length=3)] | None = None
    query_embeddings: str | None = None
    task: str | None = None

    @model_validator(mode="after")
    def _one_query_source(self) -> EmbeddingsInput:
        if self.tag_name is not None and self.query_embeddings is not None:
            raise ValueError(
                "set either 'tag_name' or 'query_embeddings' (the queries come from one of "
                "them), not both"
            )
        return self

    def kinds(self) -> tuple[InputKind, ...]:
        """The run's embeddings, or query embeddings when a tag or a file names them."""
        if self.tag_name is not None or self.query_embeddings is not None:
            return ("queries",)
        return ("embeddings",)


class ScoresInput(StrictModel):
    """Active-learning scores computed from the predictions of ``task`` (values in [0, 1])."""

    type: Literal["SCORES"]
    task: str
    score: ScoreName

    def kinds(self) -> tuple[InputKind, ...]:
        """One number per sample."""
        return ("numeric",)


class PredictionsInput(StrictModel):
    """Predictions of ``task``: per-sample class (CLASS_DISTRIBUTION) or object count."""

    type: Literal["PREDICTIONS"]
    task: str
    name: Literal["CLASS_DISTRIBUTION", "CATEGORY_COUNT"]
    categories: list[str] | None = None

    def kinds(self) -> tuple[InputKind, ...]:
        """A class distribution per sample, or one object count per sample."""
        return ("distribution",) if self.name == "CLASS_DISTRIBUTION" else ("numeric",)

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("must list at least one category name, or be left out")
            if len(set(v)) != len(v):
                raise ValueError("category names must be unique")
        return v


class MetadataInput(StrictModel):
    """A metadata value per sample: a custom key path or one of ``lightly.*`` computed ones."""

    type: Literal["METADATA"]
    key: Annotated[str, Field(min_length=1)]

    def kinds(self) -> tuple[InputKind, ...]:
        """Numbers or categories: which one is known only from the schema, at run time."""
        return ("numeric", "categorical")

    @field_validator("key")
    @classmethod
    def _lightly_key(cls, v: str) -> str:
        if v.startswith("lightly.") and v not in LIGHTLY_METADATA_KEYS:
            raise ValueError(
                f"unknown built-in metadata key '{v}'; use one of "
                f"{', '.join(LIGHTLY_METADATA_KEYS)}, or a custom key without the 'lightly.' prefix"
            )
        if v.startswith("thresher.") and v not in THRESHER_METADATA_KEYS:
            raise ValueError(
                f"unknown built-in metadata key '{v}'; use one of "
                f"{', '.join(THRESHER_METADATA_KEYS)}, or a custom key without the 'thresher.' "
                "prefix"
            )
        return v


class RandomInput(StrictModel):
    """A uniform random value in [0, 1) per sample, from ``random_seed`` (default: run seed)."""

    type: Literal["RANDOM"]
    random_seed: int | None = None

    def kinds(self) -> tuple[InputKind, ...]:
        """One number per sample."""
        return ("numeric",)


SelectionInput = Annotated[
    EmbeddingsInput | ScoresInput | PredictionsInput | MetadataInput | RandomInput,
    Field(discriminator="type"),
]

# ------------------------------------------------------------------------------- strategies

Strength = Annotated[float, Field(ge=-STRENGTH_LIMIT, le=STRENGTH_LIMIT)]


class DiversityStrategy(StrictModel):
    """Greedy farthest-point: prefer samples far from everything already chosen."""

    accepts: ClassVar[tuple[InputKind, ...]] = ("embeddings",)
    type: Literal["DIVERSITY"]
    strength: Strength = 1.0
    stopping_condition_minimum_distance: Annotated[float, Field(ge=0)] | None = None


class TargetRange(StrictModel):
    """Aim for ``min_sum <= sum(selected values) <= max_sum``."""

    min_sum: float | None = None
    max_sum: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TargetRange:
        if self.min_sum is None and self.max_sum is None:
            raise ValueError("set min_sum, max_sum or both")
        if self.min_sum is not None and self.max_sum is not None and self.min_sum > self.max_sum:
            raise ValueError(f"min_sum ({self.min_sum}) must not exceed max_sum ({self.max_sum})")
        return self


class WeightsStrategy(StrictModel):
    """Prefer samples with high input values."""

    accepts: ClassVar[tuple[InputKind, ...]] = ("numeric",)
    type: Literal["WEIGHTS"]
    strength: Strength = 1.0
    stopping_condition_max_sum: float | None = None
    target_range: TargetRange | None = None


class ThresholdStrategy(StrictModel):
    """Hard filter, applied before every other strategy. ``strength`` is accepted and unused."""

    accepts: ClassVar[tuple[InputKind, ...]] = ("numeric",)
    type: Literal["THRESHOLD"]
    strength: Strength = 1.0
    threshold: float
    operation: Literal["SMALLER", "SMALLER_EQUAL", "BIGGER", "BIGGER_EQUAL"]

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class BalanceStrategy(StrictModel):
    """Match a class distribution among the selected samples.

    ``distribution="TARGET"`` (the default) uses ``target`` ({class: fraction}); fractions that
    sum to less than 1 leave the remainder to the unlisted classes, which then do not influence
    the selection. ``UNIFORM`` and ``INPUT`` are thresher extensions: equal shares for every
    class, or the class shares of the input.
    """

    accepts: ClassVar[tuple[InputKind, ...]] = ("categorical", "distribution")
    type: Literal["BALANCE"]
    strength: Strength = 1.0
    target: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None
    distribution: Literal["TARGET", "UNIFORM", "INPUT"] = "TARGET"

    @field_validator("target")
    @classmethod
    def _fractions(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        total = sum(v.values()) if v else 0.0
        if total > 1 + 1e-6:
            raise ValueError(
                f"the fractions must sum to at most 1, got {total:g}; lower them (what is left "
                "goes to the classes not listed)"
            )
        return v

    @model_validator(mode="after")
    def _target(self) -> BalanceStrategy:
        if self.distribution == "TARGET":
            if not self.target:
                raise ValueError(
                    "distribution 'TARGET' needs 'target': set it, e.g. {'car': 0.5}, or set "
                    "distribution to 'UNIFORM' or 'INPUT'"
                )
        elif self.target is not None:
            raise ValueError(
                f"'target' is used only with distribution 'TARGET'; remove it, or set "
                f"distribution to 'TARGET' (got distribution '{self.distribution}')"
            )
        return self


class SimilarityStrategy(StrictModel):
    """Prefer samples close to the query embeddings (tag or file given on the input)."""

    accepts: ClassVar[tuple[InputKind, ...]] = ("queries",)
    type: Literal["SIMILARITY"]
    strength: Strength = 1.0


class TypicalityStrategy(StrictModel):
    """Prefer typical samples: dense regions, measured over K nearest neighbours."""

    accepts: ClassVar[tuple[InputKind, ...]] = ("embeddings",)
    type: Literal["TYPICALITY"]
    strength: Strength = 1.0
    num_nearest_neighbors: Annotated[int, Field(ge=2)] = 20
    stopping_condition_minimum_typicality: Annotated[float, Field(gt=0, le=1)] | None = None


class CoverageStrategy(StrictModel):
    """Prefer samples that cover the most data not covered yet (kernel herding).

    A thresher extension. ``kernel_width`` is the Gaussian kernel's sigma in units of the
    median distance between two samples; thresher.selection.coverage has the details.
    """

    accepts: ClassVar[tuple[InputKind, ...]] = ("embeddings",)
    type: Literal["COVERAGE"]
    strength: Strength = 1.0
    kernel_width: Annotated[float, Field(gt=0, le=10)] = 0.4


SelectionStrategy = Annotated[
    DiversityStrategy
    | WeightsStrategy
    | ThresholdStrategy
    | BalanceStrategy
    | SimilarityStrategy
    | TypicalityStrategy
    | CoverageStrategy,
    Field(discriminator="type"),
]


def strategy_type(cls: type[StrictModel]) -> str:
    """The ``type`` name of a strategy (or input) config class, e.g. ``"DIVERSITY"``."""
    return str(get_args(cls.model_fields["type"].annotation)[0])


# The strategy config classes, in the order messages list them.
STRATEGY_CLASSES: tuple[type[StrictModel], ...] = get_args(get_args(SelectionStrategy)[0])

# How to get an input of a kind, for messages that say how to fix a pair.
_KIND_HINTS: dict[str, str] = {
    "queries": "needs query embeddings: set input.tag_name (a tag in .lightly/tags/) or "
    "input.query_embeddings (a CSV in .lightly/embeddings/)",
}


def allowed_strategies(inp: SelectionInput) -> tuple[str, ...]:
    """The strategy types that may be used with ``inp``: those accepting a kind it gives."""
    kinds = set(inp.kinds())
    return tuple(
        strategy_type(cls) for cls in STRATEGY_CLASSES if kinds & set(getattr(cls, "accepts", ()))
    )


def input_label(inp: SelectionInput) -> str:
    """A short readable name of an input, e.g. ``"METADATA lightly.sharpness"``."""
    if isinstance(inp, EmbeddingsInput):
        if inp.tag_name is not None:
            return f"EMBEDDINGS tag:{inp.tag_name}"
        if inp.query_embeddings is not None:
            return f"EMBEDDINGS file:{inp.query_embeddings}"
        return "EMBEDDINGS"
    if isinstance(inp, ScoresInput):
        return f"SCORES {inp.task} {inp.score}"
    if isinstance(inp, PredictionsInput):
        cats = f" [{','.join(inp.categories)}]" if inp.categories else ""
        return f"PREDICTIONS {inp.task} {inp.name}{cats}"
    if isinstance(inp, MetadataInput):
        return f"METADATA {inp.key}"
    return f"RANDOM seed={inp.random_seed}"


class StrategyEntry(StrictModel):
    """One ``{input, strategy}`` pair."""

    input: SelectionInput
    strategy: SelectionStrategy

    @model_validator(mode="after")
    def _allowed_pair(self) -> StrategyEntry:
        allowed = allowed_strategies(self.input)
        if self.strategy.type not in allowed:
            what: str = self.input.type
            if isinstance(self.input, PredictionsInput):
                what += f" {self.input.name}"
            elif isinstance(self.input, EmbeddingsInput) and self.input.kinds() == ("queries",):
                what += " with a query (tag_name or query_embeddings)"
            hints = [_KIND_HINTS[k] for k in self.strategy.accepts if k in _KIND_HINTS]
            fix = f" ({self.strategy.type} {hints[0]})" if hints else ""
            raise ValueError(
                f"strategy {self.strategy.type} cannot be used with input {what}; "
                f"allowed: {', '.join(allowed)}{fix}; use one of those, or another input"
            )
        return self


# ---------------------------------------------------------------------------- auto tasks


class TilingTask(StrictModel):
    """Split every image into ``num_rows`` x ``num_cols`` tiles overlapping by ``overlap``.

    An object task (``docs/objects.md``): an ``EMBEDDINGS`` input with ``task: <name>`` selects
    tiles; ``overlap`` is the fraction of a tile shared with its neighbour.
    """

    type: Literal["TILING"]
    name: str
    num_rows: Annotated[int, Field(ge=1)]
    num_cols: Annotated[int, Field(ge=1)]
    overlap: Annotated[float, Field(ge=0, le=1)] = 0.0


class CropTask(StrictModel):
    """The same boxes of every image: each ``[x, y, w, h]`` relative to the image size.

    An object task (``docs/objects.md``), like :class:`TilingTask`.
    """

    type: Literal["CROP"]
    name: str
    bboxs: Annotated[
        list[
            Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=4, max_length=4)]
        ],
        Field(min_length=1),
    ]

    @field_validator("bboxs")
    @classmethod
    def _inside(cls, v: list[list[float]]) -> list[list[float]]:
        for i, (x, y, w, h) in enumerate(v):
            if w <= 0 or h <= 0 or x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
                raise ValueError(
                    f"bboxs[{i}] = {[x, y, w, h]}: each box is [x, y, w, h] relative to the "
                    "image, with w > 0, h > 0, x + w <= 1 and y + h <= 1"
                )
        return v


AutoTask = Annotated[TilingTask | CropTask, Field(discriminator="type")]

# ------------------------------------------------------------------------------ top level


DEFAULT_KERNEL_WIDTH = 0.4


def default_strategies() -> list[StrategyEntry]:
    """The recipe used when ``strategies`` is left out: COVERAGE with kernel width 0.4.

    Each pick covers the most of the data not covered yet (kernel herding): the first picks
    sit in the densest regions, later ones in the densest regions left uncovered. On
    Fashion-MNIST embedded with the default model it matched or beat TypiClust (k-means into
    N clusters, the most typical sample of each) and random at 1 to 10 labels per class,
    where the earlier default (DIVERSITY x TYPICALITY^0.5) fell behind TypiClust.
    docs/selection.md has the tables from ``benchmarks/selection_quality.py``, a held-out
    set included.
    """
    return [
        StrategyEntry.model_validate(
            {
                "input": {"type": "EMBEDDINGS"},
                "strategy": {"type": "COVERAGE", "kernel_width": DEFAULT_KERNEL_WIDTH},
            }
        ),
    ]


class SelectionConfig(StrictModel):
    """What to select: ``n_samples`` xor ``proportion_samples``, and the strategies.

    Attributes:
        n_samples: How many samples to pick, at least 1; ``-1`` picks until every stopping
            condition is met (or the whole pool, if there is none).
        proportion_samples: Fraction of the pool to pick, in (0, 1].
        strategies: ``{input, strategy}`` pairs; left out, the default recipe is used
            (:func:`default_strategies`).
        lightly_path_regex: Accepted; refused by ``load_configs`` (not supported yet).
        auto_tasks: Boxes made without a model (``TILING``, ``CROP``); each is an object
            task an ``EMBEDDINGS`` input names (``docs/objects.md``).
    """

    n_samples: int | None = None
    proportion_samples: float | None = None
    strategies: Annotated[list[StrategyEntry], Field(min_length=1)] | None = None
    lightly_path_regex: str | None = None
    auto_tasks: list[AutoTask] | None = None

    @field_validator("n_samples")
    @classmethod
    def _count(cls, v: int | None) -> int | None:
        if v is not None and v < 1 and v != -1:
            what = "0 would select nothing" if v == 0 else f"got {v}"
            raise ValueError(
                f"must be a count of at least 1, or -1 to select until every stopping "
                f"condition is met (the whole pool when there is none); {what}"
            )
        return v

    @field_validator("proportion_samples")
    @classmethod
    def _fraction(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= 1:
            what = "0 would select nothing" if v == 0 else f"got {v}"
            raise ValueError(f"must be a fraction of the pool in (0, 1], e.g. 0.1 for 10%; {what}")
        return v

    @model_validator(mode="after")
    def _exactly_one_size(self) -> SelectionConfig:
        if (self.n_samples is None) == (self.proportion_samples is None):
            both = "both are set" if self.n_samples is not None else "neither is set"
            raise ValueError(f"set exactly one of 'n_samples' and 'proportion_samples' ({both})")
        return self

    def effective_strategies(self) -> list[StrategyEntry]:
        """The strategies a run uses: the configured ones, or the default recipe."""
        return list(self.strategies) if self.strategies else default_strategies()

    def n_for(self, pool_size: int) -> int | None:
        """The number of samples to pick from a pool of ``pool_size``; None means no limit."""
        if self.n_samples is not None:
            return None if self.n_samples == -1 else self.n_samples
        assert self.proportion_samples is not None
        return round(self.proportion_samples * pool_size)
