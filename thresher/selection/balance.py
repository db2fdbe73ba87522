"""BALANCE: steer the class distribution of the chosen samples toward a target.

Classes come from categorical metadata (one class per sample) or from a prediction task's
class distribution (a probability vector, or per-object sums for detection). The listed target
classes each form a bucket; every unlisted class shares one "other" bucket whose target is the
remainder ``1 - sum(target)``, so unlisted classes do not influence the selection among
themselves. The objective of a sample is the mass-weighted mean, over its buckets, of

    g_b = (target_b * (n + 1) + 1) / (count_b + 1),

the bucket's wanted count after one more pick over its current count (n chosen so far, both
smoothed by one). An under-represented bucket has g > 1 and an over-represented one g < 1, so
the greedy loop keeps the counts near the target; with other strategies the product trades
the two off. A bucket with target 0 is never wanted more than one that is on target.

Example:
    >>> import numpy as np
    >>> labels = np.array(["a", "a", "a", "b"], dtype=object)
    >>> b = BalanceObjective.from_labels(labels, {"a": 0.5, "b": 0.5})
    >>> b.observe(0)
    >>> int(np.argmax(b.log_value()))
    3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from thresher.selection.objective import Objective, Pool, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import BalanceStrategy
    from thresher.selection.inputs import Resolved

SMOOTHING = 1.0


class BalanceObjective(Objective):
    """Match a target share per class bucket.

    Args:
        membership: (N, C) non-negative class mass per sample.
        classes: The C class names, in column order.
        target: {class: fraction}; None with ``distribution`` INPUT or UNIFORM.
        distribution: TARGET, UNIFORM (equal share for every class) or INPUT (the pool's
            shares).
        strength: Exponent; negative pushes away from the target.
    """

    name = "BALANCE"
    dynamic = True

    def __init__(
        self,
        membership: NDArray[np.floating[Any]],
        classes: Sequence[str],
        target: Mapping[str, float] | None = None,
        distribution: str = "TARGET",
        strength: float = 1.0,
    ) -> None:
        super().__init__(strength)
        m = np.asarray(membership, np.float64)
        classes = [str(c) for c in classes]
        if distribution == "UNIFORM":
            present = [c for j, c in enumerate(classes) if m[:, j].sum() > 0]
            target = {c: 1.0 / max(len(present), 1) for c in present}
        elif distribution == "INPUT":
            mass = m.sum(axis=0)
            total = max(float(mass.sum()), 1e-12)
            target = {c: float(mass[j] / total) for j, c in enumerate(classes)}
        assert target is not None
        listed = [c for c in target if c in classes]
        col = {c: j for j, c in enumerate(classes)}
        # Buckets: one per listed class present in the data, then "other".
        buckets = np.zeros((m.shape[0], len(listed) + 1), np.float64)
        for b, c in enumerate(listed):
            buckets[:, b] = m[:, col[c]]
        others = [j for c, j in col.items() if c not in target]
        if others:
            buckets[:, -1] = m[:, others].sum(axis=1)
        mass_row = buckets.sum(axis=1)
        # A sample without any class mass (no prediction, missing category) is "other".
        buckets[mass_row <= 0, -1] = 1.0
        self.bucket_names = [*listed, "<other>"]
        self.weights = (buckets / buckets.sum(axis=1, keepdims=True)).astype(np.float32)
        self.mass = buckets
        t = np.array([float(target[c]) for c in listed] + [0.0])
        t[-1] = max(0.0, 1.0 - float(sum(target.values())))
        self.target = t
        self.counts = np.zeros(len(self.bucket_names), np.float64)
        # One pick adds about one sample's mass (one class, or several objects).
        self.step = float(buckets.sum(axis=1).mean()) if buckets.shape[0] else 1.0

    @classmethod
    def from_labels(
        cls,
        labels: NDArray[Any],
        target: Mapping[str, float] | None = None,
        distribution: str = "TARGET",
        strength: float = 1.0,
    ) -> BalanceObjective:
        """Build from one categorical label per sample (None means no class)."""
        labels = np.asarray(labels, dtype=object)
        names = sorted({str(v) for v in labels.tolist() if v is not None})
        col = {c: j for j, c in enumerate(names)}
        m = np.zeros((labels.shape[0], len(names)), np.float32)
        for i, v in enumerate(labels.tolist()):
            if v is not None:
                m[i, col[str(v)]] = 1.0
        return cls(m, names, target, distribution, strength)

    def ratios(self) -> NDArray[np.float64]:
        """(B,) current wanted/actual count ratio of every bucket."""
        n = self.counts.sum()
        wanted = self.target * (n + self.step)
        out: NDArray[np.float64] = (wanted + SMOOTHING) / (self.counts + SMOOTHING)
        return out

    def log_value(self) -> NDArray[np.float64]:
        """(N,) strength * log of the mass-weighted mean ratio of each sample's buckets."""
        g = self.ratios().astype(np.float32)
        return self.strength * safe_log(self.weights @ g)

    def observe(self, i: int) -> None:
        """Add the pick's class mass to the counts."""
        self.counts += self.mass[i]

    def observe_many(self, rows: NDArray[np.int64]) -> None:
        """Add the preselected class mass to the counts."""
        self.counts += self.mass[rows].sum(axis=0)


def build(cfg: BalanceStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: BALANCE over categories or class distributions."""
    assert r.values is not None
    if r.kind == "categorical":
        return BalanceObjective.from_labels(r.values, cfg.target, cfg.distribution, cfg.strength)
    return BalanceObjective(r.values, r.classes, cfg.target, cfg.distribution, cfg.strength)
