"""Figures of the report, each a function returning a matplotlib Figure.

Figures are drawn from the numbers that go into report.json (pre-binned histograms, 2-D
coordinates), so the PDF never shows a number the JSON lacks. They are built with
:class:`matplotlib.figure.Figure` and the Agg canvas rather than pyplot, so they never enter
pyplot's global figure registry and are safe to draw from worker threads; still, pass every
figure to :func:`save_figure`, which writes it and closes it.

Example:
    >>> fig = sizes_figure({"nInput": 10, "nFiltered": 0, "nCorrupt": 1, "nDuplicate": 1,
    ...                     "nRemoved": 5, "nSelected": 3})
    >>> save_figure(fig, pathlib.Path("plots/sizes.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from thresher.selection.report import (
    SETS,
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
)

#: Colours of the three sets, used in every figure.
COLORS = {"input": "#4C72B0", "selected": "#DD8452", "random": "#55A868", "removed": "#8C8C8C"}

SIZE_LABELS = (
    ("nInput", "input"),
    ("nFiltered", "filtered out (relevant_filenames)"),
    ("nCorrupt", "corrupt"),
    ("nDuplicate", "exact duplicate"),
    ("nRemoved", "removed by selection"),
    ("nSelected", "selected"),
)


def ellipsize(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters by cutting out its middle.

    Unlike :func:`textwrap.shorten`, this keeps filenames without spaces recognisable.

    Example:
        >>> ellipsize("a_very_long_file_name.jpg", 12)
        'a_ver…me.jpg'
    """
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """Seaborn's whitegrid/paper look, applied only while a figure is being built."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.1)}
    with matplotlib.rc_context(rc):
        yield


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    """Write a figure as PNG and close it, whatever happens.

    Args:
        fig: The figure.
        path: Target file; parent directories are created.

    Returns:
        ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", bbox_inches="tight")
    finally:
        close_figure(fig)
    return path


def close_figure(fig: Figure) -> None:
    """Release a figure's memory (also removes it from pyplot if pyplot knows it)."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
    fig.clear()


# ---------------------------------------------------------------------------------------------


def sizes_figure(sizes: dict[str, int]) -> Figure:
    """Horizontal bars of the dataset size at each stage.

    Args:
        sizes: camelCase DatasetSizes (``nInput`` ... ``nSelected``).

    Returns:
        The figure.
    """
    with _style():
        fig, axes = _figure(7.0, 2.6)
        ax = axes[0, 0]
        labels = [label for key, label in SIZE_LABELS][::-1]
        values = [int(sizes.get(key, 0)) for key, _ in SIZE_LABELS][::-1]
        colors = [COLORS["selected"], COLORS["removed"], "#C44E52", "#C44E52", "#937860"]
        colors += [COLORS["input"]]
        ax.barh(labels, values, color=colors)
        top = max([*values, 1])
        for y, v in enumerate(values):
            pct = f" ({100.0 * v / sizes['nInput']:.1f}%)" if sizes.get("nInput") else ""
            ax.text(v + top * 0.01, y, f"{v:,}{pct}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.25)
        ax.set_xlabel("number of files")
        ax.set_title("Dataset sizes per stage")
        fig.tight_layout()
    return fig


def distance_histogram_figure(hist: dict[str, Any], title: str, color: str) -> Figure:
    """Histogram of pairwise distances with a log-scale count axis (like Lightly's).

    Args:
        hist: ``{"bins": edges, "counts": counts, "nPoints", "nPairs"}``.
        title: Axes title.
        color: Bar colour.

    Returns:
        The figure.
    """
    with _style():
        fig, axes = _figure(4.2, 3.0)
        ax = axes[0, 0]
        edges = np.asarray(hist["bins"], dtype=float)
        counts = np.asarray(hist["counts"], dtype=float)
        if counts.sum() > 0:
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=color, alpha=0.9)
            ax.set_yscale("log")
            # Counts are whole numbers: below 1 a log axis only shows meaningless 10^-k ticks.
            ax.set_ylim(0.7, max(10.0, float(counts.max()) * 1.5))
        else:
            ax.set_ylim(0, 1)
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                "no pairs (fewer than 2 points)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("pairwise embedding distance")
        ax.set_ylabel("number of pairs (log)")
        sub = " (subsample)" if hist.get("subsampled") else ""
        ax.set_title(f"{title}: {hist.get('nPoints', 0):,} points{sub}", fontsize=9)
        fig.tight_layout()
    return fig


def _density(hist: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    edges = np.asarray(hist["bins"], dtype=float)
    counts = np.asarray(hist["counts"], dtype=float)
    total = counts.sum()
    return edges, (counts / total if total > 0 else counts)


def nearest_neighbor_figure(stats: dict[str, Any]) -> Figure:
    """Nearest-neighbour distances within input and selection, and the coverage distances.

    Args:
        stats: ``embeddingInformation`` from :func:`thresher.reports.metrics.embedding_statistics`.

    Returns:
        A two-panel figure.
    """
    with _style():
        fig, axes = _figure(8.0, 3.0, 1, 2)
        ax = axes[0, 0]
        nn = stats["distanceToNearestNeighborInSet"]
        for key in ("input", "selected"):
            if nn[key]["nQueries"]:
                edges, frac = _density(nn[key])
                ax.stairs(frac, edges, label=key, color=COLORS[key], linewidth=1.8)
        ax.set_xlabel("distance to nearest neighbour in the same set")
        ax.set_ylabel("fraction of points")
        ax.set_title("Nearest-neighbour distance", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax = axes[0, 1]
        cov = stats["distanceToCoverInput"]
        if cov["nQueries"]:
            edges, frac = _density(cov)
            ax.stairs(frac, edges, fill=True, color=COLORS["selected"], alpha=0.7)
            m = cov["metrics"]
            for key, style in (("mean", "--"), ("p95", ":"), ("max", "-")):
                if m.get(key) is not None:
                    ax.axvline(m[key], color="k", linestyle=style, linewidth=1, label=key)
            ax.legend(fontsize=8)
        ax.set_xlabel("distance from input point to nearest selected")
        ax.set_ylabel("fraction of input points")
        ax.set_title("Coverage of the input by the selection", fontsize=9)
        fig.tight_layout()
    return fig


def pca_figure(
    input_xy: np.ndarray,
    selected_xy: np.ndarray,
    explained: Sequence[float] = (0.0, 0.0),
    overlay: bool = True,
) -> Figure:
    """2-D PCA map of the input, with the selection highlighted.

    Args:
        input_xy: (N, 2) coordinates of the input points shown.
        selected_xy: (S, 2) coordinates of the selected points shown.
        explained: Explained-variance ratio of the two axes.
        overlay: Draw the selection on top; False gives the plain map.

    Returns:
        The figure.
    """
    with _style():
        fig, axes = _figure(6.0, 5.0)
        ax = axes[0, 0]
        input_xy = np.asarray(input_xy, dtype=float).reshape(-1, 2)
        _scatter_map(ax, input_xy, selected_xy, overlay, f"{len(input_xy):,}")
        ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
        ax.set_title("PCA of the embeddings" + (" with the selection" if overlay else ""))
        ax.legend(loc="best", fontsize=8, markerscale=2)
        fig.tight_layout()
    return fig


def _scatter_map(
    ax: Any, input_xy: np.ndarray, selected_xy: np.ndarray, overlay: bool, shown: str
) -> None:
    """A 2-D map's points: the input (``shown`` of it in the legend), the selection on top."""
    selected_xy = np.asarray(selected_xy, dtype=float).reshape(-1, 2)
    size = float(np.clip(2000.0 / max(len(input_xy), 1), 3.0, 12.0))
    ax.scatter(
        input_xy[:, 0],
        input_xy[:, 1],
        s=size,
        c=COLORS["input"],
        alpha=0.5,
        linewidths=0,
        label=f"input ({shown} shown)",
    )
    if overlay and len(selected_xy):
        ax.scatter(
            selected_xy[:, 0],
            selected_xy[:, 1],
            s=max(size * 2.5, 8.0),
            c=COLORS["selected"],
            edgecolors="k",
            linewidths=0.3,
            label=f"selected ({len(selected_xy):,} shown)",
        )


def umap_figure(
    input_xy: np.ndarray,
    selected_xy: np.ndarray,
    n_neighbors: int,
    n_input: int,
    overlay: bool = True,
) -> Figure:
    """2-D UMAP map of (a sample of) the input, with the selection highlighted.

    Args:
        input_xy: (N, 2) coordinates of the input points drawn (the fitted sample).
        selected_xy: (S, 2) coordinates of the selected points among them.
        n_neighbors: UMAP's ``n_neighbors`` (k) of this map.
        n_input: Size of the whole input, for the legend.
        overlay: Draw the selection on top; False gives the plain map.

    Returns:
        The figure.
    """
    with _style():
        fig, axes = _figure(6.0, 5.0)
        ax = axes[0, 0]
        input_xy = np.asarray(input_xy, dtype=float).reshape(-1, 2)
        shown = f"{len(input_xy):,}" + ("" if len(input_xy) >= n_input else f" of {n_input:,}")
        _scatter_map(ax, input_xy, selected_xy, overlay, shown)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        title = f"UMAP of the embeddings, k = {n_neighbors}"
        ax.set_title(title + (" with the selection" if overlay else ""))
        ax.legend(loc="best", fontsize=8, markerscale=2)
        fig.tight_layout()
    return fig


def vs_random_figure(result: dict[str, Any]) -> Figure:
    """The selection against random picks of the same size, one panel per measure.

    Each panel shows the random picks (green dots, their mean ± std as a bar) and the
    selection (orange diamond); the panel title says whether higher or lower is better.

    Args:
        result: :func:`thresher.reports.vs_random.selection_vs_random`'s result.

    Returns:
        The figure.
    """
    measures = result["measures"]
    keys = list(measures)
    ncols = min(2 if len(keys) == 4 else 3, max(len(keys), 1))
    nrows = max(1, -(-len(keys) // ncols))
    titles = {
        "coverageMean": "coverage: mean distance\ninput → nearest pick",
        "coverageMax": "coverage: max distance\ninput → nearest pick",
        "nearestPickMean": "redundancy: mean distance\npick → nearest other pick",
        "clusterCoverage": "k-means clusters touched\n(share)",
        "classCoverage": "predicted classes\ncontained (share)",
        "classBalance": "balance of predicted\nclasses (entropy)",
    }
    with _style():
        fig, axes = _figure(2.6 * ncols, 2.3 * nrows, nrows, ncols)
        for j in range(nrows * ncols):
            ax = axes[j // ncols, j % ncols]
            if j >= len(keys):
                ax.axis("off")
                continue
            m = measures[keys[j]]
            rnd = np.asarray(m["random"], dtype=float)
            ax.scatter(rnd, np.zeros(len(rnd)), color=COLORS["random"], s=18, label="random picks")
            if m["randomMean"] is not None:
                ax.errorbar(
                    [m["randomMean"]],
                    [0.0],
                    xerr=[m["randomStd"] or 0.0],
                    fmt="|",
                    color=COLORS["random"],
                    markersize=14,
                    capsize=4,
                )
            ax.scatter(
                [m["selected"]],
                [0.0],
                marker="D",
                s=60,
                color=COLORS["selected"],
                edgecolors="k",
                linewidths=0.5,
                zorder=3,
                label="selection",
            )
            better = "higher" if m["higherIsBetter"] else "lower"
            ax.set_title(f"{titles.get(keys[j], keys[j])}\n({better} is better)", fontsize=8)
            ax.set_yticks([])
            ax.set_ylim(-1, 1)
            values = np.concatenate([rnd, [m["selected"]]])
            lo, hi = float(values.min()), float(values.max())
            pad = (hi - lo) * 0.15 or max(abs(hi) * 0.05, 0.01)
            ax.set_xlim(lo - pad, hi + pad)
            ax.tick_params(axis="x", labelsize=7)
        axes[0, 0].legend(fontsize=7, loc="upper left", framealpha=0.9)
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# distributions


def distribution_figure(dist: Distribution) -> Figure:
    """One distribution (metadata, score or prediction) for input, selected and random.

    Numeric distributions are drawn as overlaid normalised histograms, categorical ones as
    grouped bars of fractions.

    Args:
        dist: A distribution from :func:`thresher.selection.report.report_distributions`.

    Returns:
        The figure.
    """
    with _style():
        fig, axes = _figure(7.0, 3.0)
        ax = axes[0, 0]
        if isinstance(dist, NumericDistribution):
            _draw_numeric(ax, dist)
        else:
            _draw_categorical(ax, dist)
        ax.set_title(f"{dist.label}  (strategies: {', '.join(dist.strategies)})", fontsize=9)
        ax.set_ylim(bottom=0)
        fig.tight_layout()
    return fig


def _fractions(counts: Sequence[int]) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def _draw_numeric(ax: Any, dist: NumericDistribution) -> None:
    edges = dist.edges()
    for name in SETS:
        part = getattr(dist, name)
        mean = part.metrics.mean
        label = name if mean is None else f"{name} (mean {mean:.3g})"
        ax.stairs(_fractions(part.counts), edges, label=label, color=COLORS[name], linewidth=1.8)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("fraction of samples")
    ax.set_xlabel(dist.key if dist.input_type != "PREDICTIONS" else "objects per sample")
    ax.legend(fontsize=8)


def _draw_categorical(ax: Any, dist: CategoricalDistribution) -> None:
    cats = list(dist.input.counts)
    if len(cats) > 30:  # keep the 30 most frequent input categories readable
        cats = sorted(cats, key=lambda c: -dist.input.counts[c])[:30]
    x = np.arange(len(cats))
    width = 0.8 / len(SETS)
    for i, name in enumerate(SETS):
        counts = getattr(dist, name).counts
        total = sum(counts.values())
        frac = [counts.get(c, 0) / total if total else 0.0 for c in cats]
        ax.bar(x + (i - 1) * width, frac, width=width, label=name, color=COLORS[name])
    ax.set_xticks(x)
    ax.set_xticklabels(
        [ellipsize(c, 18) for c in cats],
        rotation=45 if len(cats) > 6 else 0,
        ha="right" if len(cats) > 6 else "center",
        fontsize=7,
    )
    unit = "objects" if dist.input_type == "PREDICTIONS" else "samples"
    ax.set_ylabel(f"fraction of {unit}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


# ---------------------------------------------------------------------------------------------
# thumbnails


def _thumbnail(load_image: Callable[[str], Image.Image] | None, name: str, size: int) -> np.ndarray:
    """An RGB thumbnail, or a grey placeholder with a cross when the image cannot be opened."""
    if load_image is not None:
        try:
            with contextlib.ExitStack() as stack:
                img = load_image(name)
                if hasattr(img, "close"):
                    stack.callback(img.close)
                img = img.convert("RGB")
                img.thumbnail((size, size))
                canvas = Image.new("RGB", (size, size), (255, 255, 255))
                canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
                return np.asarray(canvas)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError):
            pass  # a missing or broken image becomes a placeholder; the report still renders
    ph = np.full((size, size, 3), 225, dtype=np.uint8)
    idx = np.arange(size)
    ph[idx, idx] = 150
    ph[idx, size - 1 - idx] = 150
    return ph


def examples_figure(
    pairs: Sequence[dict[str, Any]],
    load_image: Callable[[str], Image.Image] | None,
    thumb_px: int = 160,
) -> Figure:
    """Thumbnails of removed images (top row) above their nearest selected image (bottom row).

    Args:
        pairs: ``{"selectedImage", "removedImage", "distance"}`` dicts.
        load_image: Opens a file by relative name; None or a failure draws a placeholder.
        thumb_px: Thumbnail size in pixels.

    Returns:
        The figure (one column per pair).
    """
    n = max(len(pairs), 1)
    with _style(), matplotlib.rc_context({"axes.grid": False}):
        fig, axes = _figure(1.45 * n + 0.4, 3.6, 2, n)
        for j in range(n):
            for i, key in enumerate(("removedImage", "selectedImage")):
                ax = axes[i, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(pairs):
                    ax.axis("off")
                    continue
                name = str(pairs[j][key])
                ax.imshow(_thumbnail(load_image, name, thumb_px))
                color = COLORS["removed"] if i == 0 else COLORS["selected"]
                for spine in ax.spines.values():
                    spine.set_edgecolor(color)
                    spine.set_linewidth(3)
                label = ellipsize(pathlib.PurePosixPath(name).name, 22)
                ax.set_xlabel(label, fontsize=6)
            if j < len(pairs):
                axes[0, j].set_title(f"d = {pairs[j]['distance']:.3f}", fontsize=8)
        axes[0, 0].set_ylabel("removed", fontsize=9)
        axes[1, 0].set_ylabel("nearest selected", fontsize=9)
        fig.tight_layout()
    return fig


def selected_grid_figure(
    names: Sequence[str],
    load_image: Callable[[str], Image.Image] | None,
    ncols: int = 6,
    thumb_px: int = 128,
) -> Figure:
    """Thumbnails of selected images in pick order, each with its rank and name.

    Args:
        names: Filenames (relative to the INPUT root), first pick first.
        load_image: Opens a file by relative name; None or a failure draws a placeholder.
        ncols: Thumbnails per row.
        thumb_px: Thumbnail size in pixels.

    Returns:
        The figure (one empty panel saying so when ``names`` is empty).
    """
    n = len(names)
    nrows = max(1, -(-n // ncols))
    with _style(), matplotlib.rc_context({"axes.grid": False}):
        fig, axes = _figure(1.25 * ncols, 1.42 * nrows, nrows, ncols)
        for k in range(nrows * ncols):
            ax = axes[k // ncols, k % ncols]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= n:
                ax.axis("off")
                continue
            ax.imshow(_thumbnail(load_image, names[k], thumb_px))
            for spine in ax.spines.values():
                spine.set_edgecolor(COLORS["selected"])
                spine.set_linewidth(1.5)
            ax.set_xlabel(f"{k + 1}. {ellipsize(names[k], 24)}", fontsize=5.5)
        if n == 0:
            axes[0, 0].text(0, 0.5, "no images were selected", fontsize=9)
        fig.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.3)
    return fig
