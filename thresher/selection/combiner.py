"""The greedy combiner: thresholds first, then one pick at a time.

Every pick maximises ``sum_i strength_i * log(objective_i)`` over the eligible samples, that is
the product of the objectives each raised to its strength. Three engines give the same picks:

- ``_ranked``: nothing changes after a pick (WEIGHTS, SIMILARITY, TYPICALITY, RANDOM only):
  a stable sort.
- ``_lazy``: DIVERSITY with a positive strength plus constant objectives; exact, never a
  full pass per pick. A sample's distance to the chosen set only shrinks, so an old value
  is an upper bound of its key. A pool of the best ``pool_size`` bounds is ranked (O(N),
  only when the pool runs dry); from it a shortlist of the best ``shortlist`` rows is
  refreshed exactly (one GEMM against the picks each row has not seen yet), and the exact
  greedy runs inside the shortlist for as long as its best key beats every bound outside
  it. Rows that never come near the top are never touched again, which is most of them.
- ``_dense``: everything else (BALANCE, sum conditions, negative diversity): a full
  O(N * (D + C)) pass per pick.

Ties go to the lowest row index in every engine.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from thresher.selection.coverage import CoverageObjective
from thresher.selection.diversity import DiversityObjective
from thresher.selection.objective import TINY, Objective, safe_log


def greedy(
    objectives: Sequence[Objective],
    n_rows: int,
    n: int | None,
    preselected: NDArray[np.int64] | None = None,
    *,
    engine: str = "auto",
    shortlist: int = 2048,
    pool_size: int = 32768,
) -> NDArray[np.int64]:
    """Pick up to ``n`` rows (None: until stopping conditions or the pool run out).

    Args:
        objectives: Objectives bound to their values, all over the same ``n_rows`` rows.
        n_rows: Number of rows N.
        n: Number of new picks wanted, or None for no limit.
        preselected: Rows already chosen (a datapool); never returned, counted by every
            objective.
        engine: ``"auto"``, ``"dense"`` (the reference) or ``"lazy"``.
        shortlist: Lazy engine: rows refreshed exactly per batch.
        pool_size: Lazy engine: rows ranked between two full rankings.

    Returns:
        (n',) int64 row indices in pick order, ``n' <= n``.
    """
    cand = np.ones(n_rows, bool)
    for o in objectives:
        k = o.keep()
        if k is not None:
            cand &= k
    pre = np.zeros(0, np.int64) if preselected is None else preselected
    cand[pre] = False
    for o in objectives:
        o.observe_many(pre)
    limit = int(cand.sum()) if n is None else min(n, int(cand.sum()))
    if limit <= 0:
        return np.zeros(0, np.int64)
    static = np.zeros(n_rows, np.float64)
    for o in objectives:
        s = o.static()
        if s is not None:
            static += s
    dynamic = [o for o in objectives if o.dynamic]
    if not dynamic:
        return _ranked(static, cand, limit)
    lazy_ok = (
        len(dynamic) == 1 and isinstance(dynamic[0], DiversityObjective) and dynamic[0].strength > 0
    )
    if engine == "lazy" and not lazy_ok:
        raise ValueError(
            "the lazy engine needs DIVERSITY (positive strength) as the only dynamic objective"
        )
    if lazy_ok and engine in ("auto", "lazy"):
        div = dynamic[0]
        assert isinstance(div, DiversityObjective)
        return _lazy(div, static, cand, limit, shortlist, pool_size)
    cover_ok = (
        len(dynamic) == 1 and isinstance(dynamic[0], CoverageObjective) and dynamic[0].strength > 0
    )
    if cover_ok and engine == "auto":
        cov = dynamic[0]
        assert isinstance(cov, CoverageObjective)
        picks = _lazy_gain(cov, static, cand, limit)
        if len(picks) < limit:
            # Nothing is left to cover (every gain is zero): spread the rest farthest-point.
            div = DiversityObjective(cov.embeddings)
            div.observe_many(np.concatenate([pre, picks]))
            rest = _lazy(div, static, cand, limit - len(picks), shortlist, pool_size)
            picks = np.concatenate([picks, rest])
        return picks
    return _dense(objectives, dynamic, static, cand, limit)


def _ranked(static: NDArray[np.float64], cand: NDArray[np.bool_], limit: int) -> NDArray[np.int64]:
    rows = np.flatnonzero(cand)
    order = np.argsort(-static[rows], kind="stable")
    return rows[order[:limit]].astype(np.int64)


def _dense(
    objectives: Sequence[Objective],
    dynamic: Sequence[Objective],
    static: NDArray[np.float64],
    cand: NDArray[np.bool_],
    limit: int,
) -> NDArray[np.int64]:
    picks: list[int] = []
    score = np.empty_like(static)
    while len(picks) < limit:
        np.copyto(score, static)
        ok = cand.copy()
        for o in dynamic:
            v = o.log_value()
            if v is not None:
                score += v
            a = o.allowed()
            if a is not None:
                ok &= a
        if not ok.any():
            break
        score[~ok] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        cand[i] = False
        for o in objectives:
            o.observe(i)
    return np.asarray(picks, np.int64)


def _lazy(
    div: DiversityObjective,
    static: NDArray[np.float64],
    cand: NDArray[np.bool_],
    limit: int,
    shortlist: int = 2048,
    pool_size: int = 32768,
) -> NDArray[np.int64]:
    x, sq, s = div.x, div.sq, div.strength
    thr = div.minimum_distance
    picks: list[int] = []
    made_first = div.n_chosen == 0
    if made_first:
        # First pick as the dense engine makes it; afterwards every distance is exact.
        score = static + div.initial()
        score[~cand] = -np.inf
        first = int(np.argmax(score))
        picks.append(first)
        cand[first] = False
        div.observe(first)
    m = div.min_dist  # upper bounds from here on; exact for a row once refreshed
    # Chosen samples as [-2 c, |c|^2] rows: [x, 1] @ that^T is |x - c|^2 - |x|^2 in one GEMM.
    caug = np.empty((len(div.chosen) + limit, x.shape[1] + 1), np.float32)
    n_c = len(div.chosen)
    caug[:n_c, :-1] = x[div.chosen] * -2.0
    caug[:n_c, -1] = sq[div.chosen]
    stamp = np.full(x.shape[0], n_c, np.int64)  # centers[:stamp[i]] are folded into m[i]

    def keys(r: NDArray[np.int64]) -> NDArray[np.float64]:
        k = np.log(np.maximum(m[r].astype(np.float64), TINY))
        k *= s
        k += static[r]
        return k

    pool: NDArray[np.int64] | None = None
    outer, outer_row = -math.inf, -1  # largest key outside the pool, and its row
    while len(picks) < limit:
        if pool is None:
            # Global ranking, only when the pool runs dry: an O(N) pass.
            if thr is not None:
                cand &= m >= thr  # a bound below the threshold means the true value is too
            rows = np.flatnonzero(cand)
            if rows.size == 0:
                break
            top, outer, outer_row = _top(keys(rows), rows, pool_size)
            pool = rows[top]
        rows = pool[cand[pool]]
        if thr is not None:
            rows = rows[m[rows] >= thr]
        if rows.size == 0:
            if outer_row < 0:
                break
            pool = None
            continue
        top, inner, inner_row = _top(keys(rows), rows, shortlist)
        bound, bound_row = outer, outer_row
        if inner_row >= 0 and (inner, -inner_row) > (bound, -bound_row):
            bound, bound_row = inner, inner_row
        srows = rows[top]
        n_before = len(picks)
        sx = x[srows]
        ssq = sq[srows]
        sm = m[srows].copy()
        _refresh(sx, ssq, sm, stamp[srows], caug, n_c)
        sstatic = static[srows]
        skey = s * np.log(np.maximum(sm.astype(np.float64), TINY)) + sstatic
        if thr is not None:
            skey[sm < thr] = -math.inf
        alive = np.isfinite(skey)
        # Per pick: one (T, D + 1) x (D + 1,) product gives |x - c|^2 - |x|^2, compared with
        # the stored m^2 - |x|^2; square roots only for the rows that came closer.
        sxa = np.ones((sx.shape[0], sx.shape[1] + 1), np.float32)
        sxa[:, :-1] = sx
        rel = sm * sm - ssq
        tmp = np.empty_like(rel)
        while len(picks) < limit:
            a = int(np.argmax(skey))
            best = float(skey[a])
            if best == -math.inf:
                break
            r = int(srows[a])
            # The shortlist is exact; everything outside is bounded by `bound`.
            if best < bound or (best == bound and r > bound_row):
                break
            picks.append(r)
            cand[r] = False
            c = caug[n_c]
            c[:-1] = x[r] * -2.0
            c[-1] = sq[r]
            n_c += 1
            skey[a] = -math.inf
            alive[a] = False
            rel[a] = -np.inf
            np.dot(sxa, c, out=tmp)
            closer = np.flatnonzero(tmp < rel)
            if closer.size:
                rel[closer] = tmp[closer]
                closer = closer[alive[closer]]
                d = np.sqrt(np.maximum(tmp[closer] + ssq[closer], 0.0)).astype(np.float64)
                skey[closer] = s * np.log(np.maximum(d, TINY)) + sstatic[closer]
                if thr is not None:
                    gone = closer[d < thr]
                    skey[gone] = -math.inf
                    alive[gone] = False
        sm = np.sqrt(np.maximum(rel + ssq, 0.0))
        m[srows] = sm
        stamp[srows] = n_c
        if len(picks) == n_before and bound_row == outer_row:
            pool = None  # the pool's best fell below a row outside it: rank everything again
    div.chosen.extend(picks[1:] if made_first else picks)
    return np.asarray(picks[:limit], np.int64)


def _lazy_gain(
    cov: CoverageObjective,
    static: NDArray[np.float64],
    cand: NDArray[np.bool_],
    limit: int,
    batch: int = 64,
) -> NDArray[np.int64]:
    """Lazy greedy for COVERAGE (positive strength) plus constant objectives.

    A gain only shrinks as samples are chosen, so a key computed earlier bounds the current
    one from above. A heap holds those bounds; its best ``batch`` rows are recomputed exactly
    (one vectorised pass), and the best of them is picked for as long as it beats every
    bound left in the heap (ties to the lowest row, as in the dense engine); otherwise the
    batch goes back with its exact keys and the next best bounds are taken. Stops early, with
    fewer than ``limit`` picks, once the best candidate's gain is zero.
    """
    s = cov.strength

    def exact(r: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        g = cov.gains(r)
        return static[r] + s * safe_log(g), g

    rows = np.flatnonzero(cand)
    keys, _ = exact(rows)
    heap = list(zip((-keys).tolist(), rows.tolist(), strict=True))
    heapq.heapify(heap)
    picks: list[int] = []
    while heap and len(picks) < limit:
        taken = [heapq.heappop(heap) for _ in range(min(batch, len(heap)))]
        b = np.array([r for _, r in taken], np.int64)
        while b.size and len(picks) < limit:
            k, g = exact(b)
            j = int(np.lexsort((b, -k))[0])  # best key, lowest row among equals
            if heap and heap[0] < (-float(k[j]), int(b[j])):
                break  # a bound outside the batch may be better: refill
            if g[j] <= 0.0:
                return np.asarray(picks, np.int64)
            r = int(b[j])
            picks.append(r)
            cand[r] = False
            cov.observe(r)
            b = np.delete(b, j)
        if b.size:
            k, _ = exact(b)
            for key, r in zip((-k).tolist(), b.tolist(), strict=True):
                heapq.heappush(heap, (key, r))
    return np.asarray(picks, np.int64)


def _top(
    k: NDArray[np.float64], rows: NDArray[np.int64], t: int
) -> tuple[NDArray[np.int64], float, int]:
    """The ``t`` best of ``k`` (ties to the lowest row), and the best key and row left out.

    Args:
        k: (R,) keys.
        rows: (R,) their rows, ascending.
        t: How many to keep.

    Returns:
        ``(positions, bound, bound_row)``: ascending positions into ``rows`` of the kept ones;
        the largest key left out and its lowest row (``-inf, -1`` when nothing is left out).
    """
    if rows.size <= t:
        return np.arange(rows.size), -math.inf, -1
    kth = float(np.partition(k, rows.size - t)[rows.size - t])
    above = np.flatnonzero(k > kth)
    tied = np.flatnonzero(k == kth)
    top = np.sort(np.concatenate([above, tied[: t - above.size]]))
    out = np.ones(rows.size, bool)
    out[top] = False
    rest = np.flatnonzero(out)
    j = int(rest[np.argmax(k[rest])])  # first maximum: the lowest row
    return top, float(k[j]), int(rows[j])


def _refresh(
    sx: NDArray[np.float32],
    ssq: NDArray[np.float32],
    sm: NDArray[np.float32],
    sstamp: NDArray[np.int64],
    caug: NDArray[np.float32],
    n_c: int,
    block: int = 1 << 21,
) -> None:
    """Fold into ``sm`` the chosen samples each shortlisted row has not seen yet.

    Rows are ordered by stamp, so each block of chosen samples is multiplied only with the
    rows that have not seen it (a prefix). A row that has seen a sample cannot be lowered by
    it again, so the few extra pairs inside a block need no masking; each row ends exact.

    Args:
        sx: (T, D) shortlisted rows.
        ssq: (T,) their squared norms.
        sm: (T,) their distance bounds, updated in place.
        sstamp: (T,) how many chosen samples each row has folded in.
        caug: (K, D + 1) chosen samples as ``[-2 c, |c|^2]``.
        n_c: Number of chosen samples so far.
        block: Largest number of floats in one temporary.
    """
    if sstamp.size == 0 or int(sstamp.min()) >= n_c:
        return
    order = np.argsort(sstamp, kind="stable")
    st = sstamp[order]
    xa = np.ones((sx.shape[0], sx.shape[1] + 1), np.float32)
    xa[:, :-1] = sx[order]
    step = max(64, block // max(sx.shape[0], 1))
    best = np.full(sx.shape[0], np.inf, np.float32)
    for a in range(int(st[0]), n_c, step):
        b = min(n_c, a + step)
        nr = int(np.searchsorted(st, b, side="left"))  # rows with stamp < b
        if nr:
            np.minimum(best[:nr], (xa[:nr] @ caug[a:b].T).min(axis=1), out=best[:nr])
    best += ssq[order]
    np.maximum(best, 0.0, out=best)
    np.sqrt(best, out=best)
    sm[order] = np.minimum(sm[order], best)
