"""The selection -> report contract: one typed distribution per input a selection used.

:func:`report_distributions` describes every METADATA, SCORES and PREDICTIONS input of the
effective strategies over three sets of samples: ``input`` (the whole pool), ``selected`` and
``random`` (a seeded random pick of the same size, the baseline). The result is a list of
:data:`Distribution` models; the select stage stores it with :func:`dump_distributions`, the
report stage reads it back with :func:`load_distributions`, and the report draws and places
them by their fields, never by parsing a label. The JSON shape is Lightly's report_v2
``NumericDistributionPerSet`` / ``CategoricalDistributionPerSet`` plus the fields that say
which input it describes::

    {"kind": "numeric", "inputType": "METADATA", "key": "lightly.sharpness", "task": null,
     "categories": null, "strategies": ["WEIGHTS"], "bins": 20, "range": [lo, hi],
     "input": {"counts": [...20 ints], "metrics": {"mean", "std", "min", "median", "max"}},
     "selected": {...}, "random": {...}}

    {"kind": "categorical", "inputType": "PREDICTIONS", "task": "clf",
     "key": "CLASS_DISTRIBUTION", ..., "input": {"counts": {"cat": 8, "dog": 4},
     "metrics": {"giniImbalance", "normalizedEntropy"}}, ...}

Example:
    >>> import numpy as np
    >>> cfg = {"n_samples": 2, "strategies": [{"input": {"type": "METADATA", "key": "t"},
    ...        "strategy": {"type": "WEIGHTS"}}]}
    >>> inputs = {"embeddings": np.zeros((4, 2)), "metadata": {"t": np.arange(4.0)}}
    >>> [d] = report_distributions(cfg, inputs, np.array([3, 2]), seed=0)
    >>> d.kind, d.input_type, d.key, d.selected.counts.count(1)
    ('numeric', 'METADATA', 't', 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from thresher.config.selection import (
    MetadataInput,
    PredictionsInput,
    ScoresInput,
    SelectionConfig,
)
from thresher.errors import SchemaError
from thresher.selection.api import parse_selection_config
from thresher.selection.inputs import SelectionData, resolve

#: Equal-width bins of every numeric distribution (shared by its three sets).
BINS = 20

#: The three sets each distribution describes, in drawing order.
SETS = ("input", "selected", "random")


class _Wire(BaseModel):
    """camelCase on the wire (report_v2's style), snake_case in Python; unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class NumericMetrics(_Wire):
    """Summary of one set's values; all None for an empty set."""

    mean: float | None
    std: float | None
    min: float | None
    median: float | None
    max: float | None


class NumericSet(_Wire):
    """One set's histogram (``bins`` counts over the distribution's ``range``)."""

    counts: list[int]
    metrics: NumericMetrics


class CategoricalMetrics(_Wire):
    """Balance of one set's categories (see :func:`gini_imbalance`, :func:`normalized_entropy`)."""

    gini_imbalance: float
    normalized_entropy: float


class CategoricalSet(_Wire):
    """One set's count per category (objects for predictions, samples for metadata)."""

    counts: dict[str, int]
    metrics: CategoricalMetrics


class _Described(_Wire):
    """Which input a distribution describes.

    Attributes:
        input_type: The config's input type.
        key: The metadata key (METADATA), the score name (SCORES) or the prediction name
            (PREDICTIONS: ``CLASS_DISTRIBUTION`` or ``CATEGORY_COUNT``).
        task: The prediction task (SCORES, PREDICTIONS), else None.
        categories: The categories a CATEGORY_COUNT input sums over; None for all.
        strategies: The strategy types that used this input, in config order.
    """

    input_type: Literal["METADATA", "SCORES", "PREDICTIONS"]
    key: str
    task: str | None = None
    categories: list[str] | None = None
    strategies: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """A readable name, e.g. ``"SCORES clf uncertainty_margin"``."""
        parts = [self.input_type, *([self.task] if self.task else []), self.key]
        cats = f" [{', '.join(self.categories)}]" if self.categories else ""
        return " ".join(parts) + cats


class NumericDistribution(_Described):
    """report_v2's ``NumericDistributionPerSet``: one histogram per set on shared bins."""

    kind: Literal["numeric"] = "numeric"
    bins: int = Field(ge=1)
    range: tuple[float, float]
    input: NumericSet
    selected: NumericSet
    random: NumericSet

    @model_validator(mode="after")
    def _shape(self) -> NumericDistribution:
        lo, hi = self.range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"range must be finite with lo < hi, got {list(self.range)}")
        for name in SETS:
            n = len(getattr(self, name).counts)
            if n != self.bins:
                raise ValueError(f"{name}.counts has {n} values for {self.bins} bins")
        return self

    def edges(self) -> NDArray[np.float64]:
        """The ``bins + 1`` bin edges over ``range``."""
        return np.linspace(self.range[0], self.range[1], self.bins + 1)


class CategoricalDistribution(_Described):
    """report_v2's ``CategoricalDistributionPerSet``: counts per category for each set."""

    kind: Literal["categorical"] = "categorical"
    input: CategoricalSet
    selected: CategoricalSet
    random: CategoricalSet


Distribution = Annotated[NumericDistribution | CategoricalDistribution, Field(discriminator="kind")]

_LIST = TypeAdapter(list[Distribution])


def dump_distributions(distributions: list[Distribution]) -> list[dict[str, Any]]:
    """The JSON form of :func:`report_distributions`' result (camelCase keys)."""
    out: list[dict[str, Any]] = _LIST.dump_python(distributions, mode="json", by_alias=True)
    return out


def load_distributions(obj: Any, source: str = "distributions.json") -> list[Distribution]:
    """Parse what :func:`dump_distributions` wrote.

    Args:
        obj: The parsed JSON (a list of distribution dicts).
        source: Where it came from, for the error message.

    Raises:
        SchemaError: If ``obj`` is not a list of distributions (for example a file written by
            an older thresher: delete that run's cached select stage and run again).
    """
    try:
        return _LIST.validate_python(obj)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SchemaError(
            source,
            where,
            f"{first['msg']}; not a list of report distributions (written by an older "
            "thresher? delete the cached select stage and run again)",
        ) from e


# --------------------------------------------------------------------------------- producer


def _numeric_metrics(v: NDArray[np.float64]) -> NumericMetrics:
    if v.size == 0:
        return NumericMetrics(mean=None, std=None, min=None, median=None, max=None)
    return NumericMetrics(
        mean=float(v.mean()),
        std=float(v.std()),
        min=float(v.min()),
        median=float(np.median(v)),
        max=float(v.max()),
    )


def gini_imbalance(counts: NDArray[np.float64]) -> float:
    """Gini coefficient of the class counts: 0 when balanced, towards 1 when one dominates."""
    c = np.sort(np.asarray(counts, np.float64))
    n, total = c.size, c.sum()
    if n < 2 or total <= 0:
        return 0.0
    cum = np.cumsum(c)
    g = (n + 1 - 2 * (cum.sum() / total)) / n
    return float(max(0.0, g * n / (n - 1)))


def normalized_entropy(counts: NDArray[np.float64]) -> float:
    """Entropy of the class shares over log(number of classes): 1 when balanced."""
    c = np.asarray(counts, np.float64)
    total = c.sum()
    if c.size < 2 or total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(c.size))


def _numeric(
    about: dict[str, Any], values: NDArray[np.float64], sets: dict[str, NDArray[np.int64]]
) -> NumericDistribution:
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    hists = {}
    for name, rows in sets.items():
        counts, _ = np.histogram(values[rows], bins=BINS, range=(lo, hi))
        hists[name] = NumericSet(
            counts=counts.astype(int).tolist(), metrics=_numeric_metrics(values[rows])
        )
    return NumericDistribution(**about, bins=BINS, range=(lo, hi), **hists)


def _categorical(
    about: dict[str, Any], categories: list[str], counts: dict[str, NDArray[np.int64]]
) -> CategoricalDistribution:
    sets = {}
    for name, c in counts.items():
        f = c.astype(np.float64)
        sets[name] = CategoricalSet(
            counts={k: int(v) for k, v in zip(categories, c, strict=True)},
            metrics=CategoricalMetrics(
                gini_imbalance=gini_imbalance(f), normalized_entropy=normalized_entropy(f)
            ),
        )
    return CategoricalDistribution(**about, **sets)


def report_distributions(
    selection_config: SelectionConfig | Mapping[str, Any],
    inputs: Mapping[str, Any],
    selected: NDArray[np.integer[Any]],
    seed: int,
) -> list[Distribution]:
    """Distributions of each metadata, score and prediction input for the report.

    One distribution per input (and kind), in config order; an input used by several
    strategies appears once with all of them in ``strategies``. A CLASS_DISTRIBUTION input
    always describes all of the task's categories, whatever subset its strategy balanced.
    EMBEDDINGS and RANDOM inputs have no distribution.

    Args:
        selection_config: The config the selection ran with.
        inputs: The keyword arguments given to ``select()`` (as from ``gather_inputs``).
        selected: The chosen row indices.
        seed: Seeds the random baseline pick of the same size.

    Returns:
        The distributions (see the module docstring).
    """
    cfg = parse_selection_config(selection_config)
    data = SelectionData(
        embeddings=np.asarray(inputs["embeddings"], np.float32),
        filenames=inputs.get("filenames"),
        scores=inputs.get("scores") or {},
        predictions=inputs.get("predictions") or {},
        metadata=inputs.get("metadata") or {},
        queries=inputs.get("queries") or {},
        seed=seed,
    )
    n = data.n
    sel = np.asarray(selected, np.int64)
    rnd = np.sort(np.random.default_rng(seed).choice(n, size=min(sel.size, n), replace=False))
    sets = {"input": np.arange(n), "selected": sel, "random": rnd}
    out: dict[tuple[Any, ...], Distribution] = {}
    for entry in cfg.effective_strategies():
        inp = entry.input
        about: dict[str, Any]
        if isinstance(inp, MetadataInput):
            about = {"input_type": "METADATA", "key": inp.key}
        elif isinstance(inp, ScoresInput):
            about = {"input_type": "SCORES", "task": inp.task, "key": inp.score}
        elif isinstance(inp, PredictionsInput):
            cats = inp.categories if inp.name == "CATEGORY_COUNT" else None
            about = {"input_type": "PREDICTIONS", "task": inp.task, "key": inp.name}
            about["categories"] = cats
        else:  # EMBEDDINGS and RANDOM: nothing a histogram would explain
            continue
        r = resolve(inp, entry.strategy.type, data)
        ident = (*(str(v) for v in about.values()), r.kind)
        if ident in out:
            out[ident].strategies.append(entry.strategy.type)
            continue
        about["strategies"] = [entry.strategy.type]
        if isinstance(inp, PredictionsInput) and inp.name == "CLASS_DISTRIBUTION":
            preds = data.predictions[inp.task]
            per_object = np.asarray(preds.category_counts, np.int64)
            out[ident] = _categorical(
                about,
                list(preds.category_names),
                {k: per_object[rows].sum(axis=0) for k, rows in sets.items()},
            )
        elif r.kind == "categorical":
            assert r.values is not None
            labels = np.array(["<none>" if v is None else str(v) for v in r.values], object)
            cats = sorted(set(labels.tolist()))
            out[ident] = _categorical(
                about,
                cats,
                {
                    k: np.array([(labels[rows] == c).sum() for c in cats], np.int64)
                    for k, rows in sets.items()
                },
            )
        else:
            assert r.values is not None
            out[ident] = _numeric(about, np.asarray(r.values, np.float64), sets)
    return list(out.values())
