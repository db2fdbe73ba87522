"""UMAP maps of the embeddings for k = 5, 15 and 50 neighbours, bounded in points and time.

UMAP (umap-learn) keeps local neighbourhoods that PCA flattens: clusters show as islands, and a
good selection puts picks on every island. Lightly's report draws it for ``n_neighbors`` 5, 15
and 50; so does this one, with fixed seeds so that a report is reproducible.

Bounds: the maps are fitted on a seeded sample of at most :data:`MAX_FIT_POINTS` rows (the
selected rows among them, at most :data:`MAX_FIT_SELECTED`, so the overlay has points), reduced
to :data:`PCA_DIMS` dimensions first. Only the fitted rows are drawn. umap-learn compiles its
numba code at the first fit (about 10 s on 2 idle CPU cores); thresher turns on numba's disk
cache for it, so that happens once per machine, not once per run. Each map takes 1 to 4 s
for a few thousand points (from :data:`LARGE_FIT_ROWS` rows on with :data:`LARGE_N_EPOCHS`
epochs, :func:`n_epochs`). When the maps have taken :data:`TIME_BUDGET_S` seconds, the remaining
``k`` are skipped and the result says so.

The fits run in a worker process (:class:`PendingMaps`); a run starts it as soon as its
embeddings exist (:func:`prestart`), so that importing umap-learn and numba overlaps the
near-duplicate search and the selection, and the report only hands it its rows.

Example:
    >>> maps = umap_maps(np.random.default_rng(0).normal(size=(300, 16)), np.arange(30))
    ... # doctest: +SKIP
    >>> sorted(maps["maps"])  # doctest: +SKIP
    ['5', '15', '50']
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import pickle
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.cores import cpu_count
from thresher.reports.pca import pca_basis
from thresher.reports.stats import subsample
from thresher.storage.embeddings_npy import read_rows
from thresher.tempdirs import TempDir

log = logging.getLogger(__name__)

#: ``n_neighbors`` of the maps, as in Lightly's ``scatter_umap_k_{5,15,50}.png``.
NEIGHBORS = (5, 15, 50)

#: Most rows the maps are fitted on (and drawn).
MAX_FIT_POINTS = 5000

#: Most selected rows among them.
MAX_FIT_SELECTED = 1500

#: Dimensions the rows are reduced to (PCA) before UMAP; cuts the neighbour search.
PCA_DIMS = 50

#: Seconds the maps may take together; the remaining ``k`` are skipped beyond it.
TIME_BUDGET_S = 90.0

#: Epochs of the layout optimisation (umap-learn's default: 500 below 10,000 rows, 200 above).
N_EPOCHS = 200

#: Fewer epochs from :data:`LARGE_FIT_ROWS` fitted rows on: the layout optimisation is most of
#: a map's time (at 5,000 rows, 200 epochs took 6.8 s for the three maps, 100 took 3.8 s; at
#: 1,500 rows 1.4 s against 0.7 s), and with 100 epochs the same islands come out, a little
#: less tight (seen on 1,500 and 10,000 images).
LARGE_N_EPOCHS = 100

#: Fitted rows from which :data:`LARGE_N_EPOCHS` apply.
LARGE_FIT_ROWS = 1000


def n_epochs(n_rows: int) -> int:
    """Epochs of the layout optimisation for a map of ``n_rows`` fitted rows."""
    return LARGE_N_EPOCHS if n_rows >= LARGE_FIT_ROWS else N_EPOCHS


def available() -> bool:
    """Whether umap-learn can be imported."""
    import importlib.util

    # find_spec, not an import: importing umap-learn (with scikit-learn and numba) costs 1 to
    # 3 s, which the worker process pays, not the report.
    return importlib.util.find_spec("umap") is not None


_CACHING = False


def _cache_compiled_code() -> None:
    """Let numba keep umap-learn's compiled functions on disk, as it does for pynndescent's.

    umap-learn compiles its layout and graph functions (``numba.njit`` without ``cache``) in
    every process: about 10 s on 2 idle cores, minutes on a busy machine. With caching on,
    the first report on a machine compiles and stores them (in the package's ``__pycache__``,
    or numba's user cache folder when that is read-only) and later reports load them.
    """
    global _CACHING
    if _CACHING:
        return
    import contextlib
    import importlib

    from numba.core.dispatcher import Dispatcher

    for name in ("umap.layouts", "umap.umap_", "umap.utils", "umap.spectral", "umap.distances"):
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Dispatcher):
                # No writable cache folder: numba compiles in memory, as without caching.
                with contextlib.suppress(RuntimeError, OSError):
                    value.enable_caching()
    _CACHING = True


def _reduce(x: NDArray[np.float64], dims: int, seed: int = 0) -> NDArray[np.float64]:
    """PCA to at most ``dims`` dimensions (a randomized SVD; the rows are few)."""
    if x.shape[1] <= dims:
        out: NDArray[np.float64] = x - x.mean(axis=0)
        return out
    mean, comps, _, _ = pca_basis(x, dims, seed=seed)
    out = (x - mean) @ comps.T
    return out


def _choose_rows(
    n: int, sel: NDArray[np.int64], seed: int, max_fit_points: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The fitted rows (sorted; the selected among them first chosen) and which are selected."""
    chosen_sel = sel[subsample(len(sel), min(MAX_FIT_SELECTED, max_fit_points), seed + 41)]
    is_rest = np.ones(n, bool)  # O(N), unlike setdiff1d's sort or hash of all N rows
    is_rest[chosen_sel] = False
    rest = np.flatnonzero(is_rest)
    more = rest[subsample(len(rest), max(0, max_fit_points - len(chosen_sel)), seed + 42)]
    rows = np.sort(np.concatenate([chosen_sel, more]))
    return rows, np.isin(rows, sel)


def _graph(
    x_rows: NDArray[Any], seed: int, neighbors: tuple[int, ...]
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """The rows reduced to :data:`PCA_DIMS` dimensions and their exact neighbour graph.

    One exact graph (thresher's knn) serves every k: UMAP's own approximate search
    (pynndescent) would cost a numba compile and a search per map.
    """
    from thresher.selection.knn import knn  # here: the worker process needs no selection engine

    z = _reduce(np.asarray(x_rows, np.float64), PCA_DIMS, seed).astype(np.float32)
    k_max = int(min(max(neighbors), len(z) - 1))
    dist, idx = knn(z, z, k_max + 1)
    dist[:, 0], idx[:, 0] = 0.0, np.arange(len(z))  # UMAP expects each row first
    return z, idx, dist


def _fit_maps(
    z: NDArray[np.float32],
    idx: NDArray[np.int64],
    dist: NDArray[np.float32],
    seed: int,
    neighbors: tuple[int, ...],
    time_budget_s: float,
) -> tuple[dict[str, NDArray[np.float64]], dict[str, float], list[int]]:
    """Fit one map per k on the reduced rows and their graph: ``(maps, seconds, skipped)``.

    A top-level function of numpy and umap-learn only, so that the worker process of
    :class:`PendingMaps` imports nothing else.
    """
    import umap

    _cache_compiled_code()
    maps: dict[str, NDArray[np.float64]] = {}
    seconds: dict[str, float] = {}
    skipped: list[int] = []
    start = time.perf_counter()
    for k in neighbors:
        if time.perf_counter() - start > time_budget_s:
            skipped.append(k)
            continue
        t = time.perf_counter()
        kk = int(min(k, len(z) - 1))
        reducer = umap.UMAP(
            n_neighbors=kk,
            n_components=2,
            random_state=int(seed),
            n_epochs=n_epochs(len(z)),
            precomputed_knn=(idx[:, :kk], dist[:, :kk], None),
        )
        with warnings.catch_warnings():
            # random_state disables parallelism (the price of reproducible maps), and a
            # precomputed graph disables transform(): umap-learn warns about both.
            warnings.simplefilter("ignore")
            maps[str(k)] = np.asarray(reducer.fit_transform(z), np.float64)
        seconds[str(k)] = round(time.perf_counter() - t, 2)
    return maps, seconds, skipped


class PendingMaps:
    """UMAP maps being fitted, in a worker process when there is a spare core.

    The fits take seconds of single-threaded numba work (umap-learn's ``random_state`` rules
    out its parallel mode), and importing umap-learn takes more; in a worker process both run
    beside the rest of the report (distances, figures, the PDF's text). The worker is a plain
    ``python -m thresher.reports.umap_2d IN OUT`` child with its input and output as files in a
    private temporary folder: unlike multiprocessing's spawn, it never re-runs the caller's
    main script, and unlike fork it inherits no half-held locks of the caller's threads.
    Without a spare core, or when the worker fails, the fits run in this process when
    :meth:`result` is called. Always call :meth:`close` (or ``result``).
    """

    def __init__(
        self,
        out: dict[str, Any],
        x_rows: NDArray[Any] | None,
        seed: int,
        neighbors: tuple[int, ...],
        time_budget_s: float,
        use_process: bool,
    ) -> None:
        self._out, self._x, self._args = out, x_rows, (seed, neighbors, time_budget_s)
        # Reduced rows and neighbour graph, made here (numpy and thresher's knn, a fraction of
        # a second) so the worker needs only umap-learn.
        self._graph: tuple[Any, ...] = () if x_rows is None else _graph(x_rows, seed, neighbors)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: TempDir | None = None
        if x_rows is not None and use_process:
            try:
                self._start()
            except OSError as e:  # no temporary folder or no child process here
                log.info("report: UMAP maps fitted in this process (%s)", e)
                self.close()

    def _start(self) -> None:
        worker = take_prestarted() or _Worker()
        self._tmp, self._proc = worker.tmp, worker.proc
        folder = pathlib.Path(self._tmp.name)
        with (folder / "in.pkl").open("wb") as f:
            pickle.dump((*self._graph, *self._args), f, protocol=5)
        worker.go()

    def _collect(self) -> tuple[Any, ...] | None:
        if self._proc is None or self._tmp is None:
            return None
        folder = pathlib.Path(self._tmp.name)
        rc = self._proc.wait()
        try:
            with (folder / "out.pkl").open("rb") as f:
                fitted: tuple[Any, ...] = pickle.load(f)
            if rc == 0:
                return fitted
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            log.debug("report: no UMAP result from the worker: %s", e)
        err = (folder / "stderr.txt").read_text(errors="replace")[-2000:]
        log.warning("report: the UMAP worker process failed (exit %s), fitting here: %s", rc, err)
        return None

    def result(self) -> dict[str, Any]:
        """The maps (see :func:`umap_maps`); fits them here if no worker does."""
        if self._x is None:
            return self._out
        fitted = self._collect()
        self.close()
        if fitted is None:
            z, idx, dist = self._graph
            fitted = _fit_maps(z, idx, dist, *self._args)
        self._out["maps"], self._out["seconds"], self._out["skipped"] = fitted
        self._x = None
        return self._out

    def close(self) -> None:
        """Stop the worker process, if any, and remove its files (idempotent)."""
        _end(self._proc, self._tmp)
        self._proc, self._tmp = None, None


def _end(proc: subprocess.Popen[bytes] | None, tmp: TempDir | None) -> None:
    """Stop a worker process (if running) and remove its folder."""
    if proc is not None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if tmp is not None:
        tmp.cleanup()


class _Worker:
    """A worker process that imports umap-learn, then waits for its input on a line of stdin.

    Started ahead (:func:`prestart`), it imports umap-learn and numba (seconds) while the run's
    other stages run; :class:`PendingMaps` then writes ``in.pkl`` into its folder and says
    ``go``. Its stdin is a pipe from this process: if this process ends first, however it
    ends, the worker reads end-of-file and exits, fitting nothing.
    """

    def __init__(self) -> None:
        self.tmp = TempDir("umap")
        folder = pathlib.Path(self.tmp.name)
        env = dict(os.environ)
        root = str(pathlib.Path(__file__).resolve().parents[2])  # the folder holding thresher/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            with (folder / "stderr.txt").open("wb") as err:
                self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                    [sys.executable, "-m", "thresher.reports.umap_2d", str(folder)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=env,
                )
        except BaseException:
            self.tmp.cleanup()
            raise

    def go(self) -> None:
        """Tell the worker its input is in its folder (it then fits and exits)."""
        stdin = self.proc.stdin
        if stdin is None:
            return
        # A worker that already died finds no input: its exit code and stderr say why.
        with contextlib.suppress(OSError):
            stdin.write(b"go\n")
            stdin.flush()
        with contextlib.suppress(OSError):
            stdin.close()

    def end(self) -> None:
        """Stop the worker and remove its folder."""
        _end(self.proc, self.tmp)


_prestarted: _Worker | None = None
_prestarted_lock = threading.Lock()


def prestart(neighbors: Sequence[int] = NEIGHBORS) -> bool:
    """Start the UMAP worker process now, for the next :func:`start_umap` of this process.

    The worker imports umap-learn and numba (2 to 4 s of one core) before the report needs
    it: ``thresher run`` calls this at its start-up, while Prefect's API server starts, and
    the flow when the embeddings exist (a platform worker's run), so the imports run beside
    other work instead of delaying the report's maps. Nothing starts when the report draws no
    map (``neighbors`` empty: ``worker_config.report_umap_neighbors: []``), without a spare
    core or umap-learn, or when one is waiting already. Call :func:`discard_prestarted` when
    the run ends, whether or not a report used it.

    Args:
        neighbors: The maps' ``n_neighbors`` values (the run's ``report_umap_neighbors``).

    Returns:
        Whether a worker is waiting now.
    """
    if not neighbors:
        return False
    global _prestarted
    with _prestarted_lock:
        if _prestarted is not None:
            return True
        if cpu_count() < 2 or not available():
            return False
        try:
            _prestarted = _Worker()
        except OSError as e:  # no temporary folder or no child process here
            log.info("report: no UMAP worker started ahead (%s)", e)
            return False
        return True


def take_prestarted() -> _Worker | None:
    """The worker :func:`prestart` started, if it still runs; it is the caller's then."""
    global _prestarted
    with _prestarted_lock:
        worker, _prestarted = _prestarted, None
    if worker is not None and worker.proc.poll() is not None:
        worker.end()  # it died waiting (killed): a fresh one is started instead
        return None
    return worker


def discard_prestarted() -> None:
    """Stop the worker :func:`prestart` started, if no report took it (idempotent)."""
    worker = take_prestarted()
    if worker is not None:
        worker.end()


def _wait_for_input() -> bool:
    """In the worker: import umap-learn, then wait for ``go`` on stdin (False at its end).

    Stdin is read from the start, in a thread: its end (the run ended or was killed) stops the
    worker at once, even in the middle of the imports, which take seconds.
    """
    said_go = threading.Event()

    def listen() -> None:
        try:
            go = sys.stdin.readline().strip() == "go"
        except (OSError, ValueError):
            go = False
        if go:
            said_go.set()
            return
        os._exit(0)  # the run ended; its folder is swept by the next (thresher.tempdirs)

    threading.Thread(target=listen, daemon=True).start()
    try:
        import umap  # noqa: F401  (the import is the point: it is what takes seconds)

        _cache_compiled_code()
        said_go.wait()
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches the whole process group
        return False
    return True


def _worker_main(folder: pathlib.Path) -> None:
    """The worker process: fit the maps of ``folder/in.pkl``, write ``folder/out.pkl``."""
    with (folder / "in.pkl").open("rb") as f:
        z, idx, dist, seed, neighbors, budget = pickle.load(f)
    fitted = _fit_maps(z, idx, dist, seed, neighbors, budget)
    tmp = folder / "out.pkl.tmp"
    with tmp.open("wb") as f:
        pickle.dump(fitted, f, protocol=5)
    tmp.replace(folder / "out.pkl")


def start_umap(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    *,
    seed: int = 0,
    neighbors: tuple[int, ...] = NEIGHBORS,
    max_fit_points: int = MAX_FIT_POINTS,
    time_budget_s: float = TIME_BUDGET_S,
    use_process: bool | None = None,
) -> PendingMaps:
    """Start fitting the UMAP maps of a seeded sample of rows; :meth:`PendingMaps.result`.

    Only the sampled rows are read (``embeddings`` may be a read-only memmap of any size).

    Args:
        embeddings: (N, D) embeddings.
        selected: Selected row indices.
        seed: Seeds the sample and UMAP (``random_state``, so the maps are reproducible).
        neighbors: The ``n_neighbors`` values, one map each.
        max_fit_points: Most rows fitted.
        time_budget_s: Seconds the maps may take together.
        use_process: Fit in a worker process; None: when this process may use 2 or more cores.

    Returns:
        The pending maps.
    """
    sel = np.asarray(selected, np.int64)
    n = len(embeddings)
    out: dict[str, Any] = {
        "rows": np.zeros(0, np.int64),
        "isSelected": np.zeros(0, bool),
        "maps": {},
        "seconds": {},
        "skipped": [],
        "nInput": n,
        "nSelected": len(sel),
    }
    if n < 4 or not neighbors or not available():
        out["skipped"] = list(neighbors)
        return PendingMaps(out, None, seed, neighbors, time_budget_s, False)
    rows, is_sel = _choose_rows(n, sel, seed, max_fit_points)
    out["rows"], out["isSelected"] = rows, is_sel
    x_rows = read_rows(embeddings, rows)  # reads the sampled rows only
    if use_process is None:
        use_process = cpu_count() >= 2
    return PendingMaps(out, x_rows, seed, tuple(neighbors), time_budget_s, use_process)


def umap_maps(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    *,
    seed: int = 0,
    neighbors: tuple[int, ...] = NEIGHBORS,
    max_fit_points: int = MAX_FIT_POINTS,
    time_budget_s: float = TIME_BUDGET_S,
) -> dict[str, Any]:
    """UMAP coordinates of a seeded sample of rows, one map per ``n_neighbors``, fitted here.

    Args:
        embeddings: (N, D) embeddings.
        selected: Selected row indices.
        seed: Seeds the sample and UMAP (``random_state``, so the maps are reproducible).
        neighbors: The ``n_neighbors`` values, one map each.
        max_fit_points: Most rows fitted.
        time_budget_s: Seconds the maps may take together.

    Returns:
        ``{"rows": fitted row indices (sorted), "isSelected": bool per row, "maps": {str(k):
        (len(rows), 2) float array}, "seconds": {str(k): s}, "skipped": [k, ...], "nInput",
        "nSelected"}``; ``maps`` is empty when umap-learn is missing or there are fewer than
        4 rows.
    """
    return start_umap(
        embeddings,
        selected,
        seed=seed,
        neighbors=neighbors,
        max_fit_points=max_fit_points,
        time_budget_s=time_budget_s,
        use_process=False,
    ).result()


def clean_neighbors(neighbors: tuple[int, ...]) -> tuple[int, ...]:
    """The configured ``n_neighbors`` as fitted: values below 2 count as 2."""
    return tuple(max(2, int(k)) for k in neighbors)


#: Example images marked per map: the first selected rows among the drawn ones, pick order.
N_EXAMPLE_IMAGES = 20


def umap_embedding_data(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    filenames: list[str],
    *,
    seed: int = 0,
    neighbors: tuple[int, ...] = NEIGHBORS,
    pending: PendingMaps | None = None,
) -> dict[str, Any] | None:
    """report.json's ``scatterPlotData.umapEmbeddingData``: the maps as JSON-safe lists.

    Args:
        embeddings: (N, D) embeddings.
        selected: Selected row indices, pick order.
        filenames: The N filenames (for ``exampleImages``).
        seed: Seeds the sample and UMAP.
        neighbors: ``n_neighbors`` of the maps (values below 2 count as 2); empty for none.
        pending: The maps from :func:`start_umap` (with :func:`clean_neighbors`), if started
            already; else they are fitted here.

    Returns:
        ``{"projection": "umap", "maps": {"5" | "15" | "50": {"input2dEmbeddings",
        "selectedExcludingDatapool2dEmbeddings", "exampleImages"}}, "nInput", "nSelected",
        "nFitted", "nFittedSelected", "inputSubsampled", "seconds", "skipped"}``, or None when
        umap-learn is missing or there are too few rows.
    """
    sel = np.asarray(selected, np.int64)
    if pending is None:
        pending = start_umap(embeddings, sel, seed=seed, neighbors=clean_neighbors(neighbors))
    res = pending.result()
    if not res["maps"]:
        return None
    rows, is_sel = res["rows"], res["isSelected"]
    where = {int(r): j for j, r in enumerate(rows)}
    examples = [int(i) for i in sel if int(i) in where][:N_EXAMPLE_IMAGES]
    maps = {}
    for k, xy in res["maps"].items():
        xy = np.round(xy, 4)
        maps[k] = {
            "input2dEmbeddings": xy.tolist(),
            "selectedExcludingDatapool2dEmbeddings": xy[is_sel].tolist(),
            "exampleImages": [
                {"location": xy[where[i]].tolist(), "filename": filenames[i]} for i in examples
            ],
        }
    return {
        "projection": "umap",
        "maps": maps,
        "nInput": int(res["nInput"]),
        "nSelected": int(res["nSelected"]),
        "nFitted": len(rows),
        "nFittedSelected": int(is_sel.sum()),
        "inputSubsampled": bool(len(rows) < res["nInput"]),
        "seconds": res["seconds"],
        "skipped": [int(k) for k in res["skipped"]],
    }


if __name__ == "__main__":  # the worker process of PendingMaps
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # its imports yield to the run's start-up and stages
    if _wait_for_input():
        _worker_main(pathlib.Path(sys.argv[1]))
