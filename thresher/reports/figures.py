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
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from thresher.reports.thumbs import Tile, thumbnail, tile_sheet
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


#: Seaborn's "whitegrid" style at its "paper" context (font_scale 1.1), written out: importing
#: seaborn (and pandas with it) for these constants cost 1 to 3 s per report.
STYLE: dict[str, Any] = {
    "axes.axisbelow": True,
    "axes.edgecolor": ".8",
    "axes.facecolor": "white",
    "axes.grid": True,
    "axes.labelcolor": ".15",
    "axes.labelsize": 10.56,
    "axes.linewidth": 1.0,
    "axes.titlesize": 10.56,
    "figure.facecolor": "white",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["DejaVu Sans"],  # the PDF's font; always there (matplotlib ships it)
    "font.size": 10.56,
    "grid.color": ".8",
    "grid.linestyle": "-",
    "grid.linewidth": 0.8,
    "legend.fontsize": 9.68,
    "legend.title_fontsize": 10.56,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.8,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 0.8,
    "text.color": ".15",
    "xtick.bottom": False,
    "xtick.color": ".15",
    "xtick.direction": "out",
    "xtick.labelsize": 9.68,
    "xtick.major.size": 4.8,
    "xtick.major.width": 1.0,
    "xtick.minor.size": 3.2,
    "xtick.minor.width": 0.8,
    "xtick.top": False,
    "ytick.color": ".15",
    "ytick.direction": "out",
    "ytick.labelsize": 9.68,
    "ytick.left": False,
    "ytick.major.size": 4.8,
    "ytick.major.width": 1.0,
    "ytick.minor.size": 3.2,
    "ytick.minor.width": 0.8,
    "ytick.right": False,
}


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """The report's look (:data:`STYLE`), applied only while a figure is being built."""
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    """Write a figure as PNG and close it, whatever happens.

    Args:
        fig: The figure, laid out (``tight_layout``) already.
        path: Target file; parent directories are created.

    Returns:
        ``path``.
    """
    try:
        _write(fig, path)
    finally:
        close_figure(fig)
    return path


def _write(fig: Figure, path: pathlib.Path) -> None:
    """One PNG, atomically (a temporary file beside it, then renamed).

    Every figure lays itself out with ``tight_layout`` when it is built, so no
    ``bbox_inches="tight"`` here: that would draw each figure twice. A fast zlib level keeps
    the encoding cheap; the plots are small either way.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})
    tmp.replace(path)


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
        fig, axes = _figure(7.0, 2.2)
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
            # One filled step artist, not a bar per bin: the same picture, far cheaper to lay out.
            ax.stairs(counts, edges, fill=True, color=color, alpha=0.9, baseline=0.7)
            ax.set_yscale("log")
            # Plain-text powers of ten (10³): matplotlib's default mathtext labels cost a parse
            # each, a tenth of a second per figure.
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_power_of_ten))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
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


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _power_of_ten(value: float, _pos: Any = None) -> str:
    """A log axis tick label: ``1``, ``10``, then ``10²``, ``10³``... (empty between decades)."""
    if value <= 0:
        return ""
    e = float(np.log10(value))
    if abs(e - round(e)) > 1e-6:
        return ""
    e_int = round(e)
    return {0: "1", 1: "10"}.get(e_int, "10" + str(e_int).translate(_SUPERSCRIPT))


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
    m = pca_map(input_xy, selected_xy, explained)
    m.show(overlay)
    return m.fig


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
    m = umap_map(input_xy, selected_xy, n_neighbors, n_input)
    m.show(overlay)
    return m.fig


class MapFigure:
    """A 2-D map drawn once and saved with and without the selection on top.

    Example:
        >>> m = pca_map(xy, xy[:10], (0.4, 0.2))  # doctest: +SKIP
        >>> m.save_pair(Path("scatter_pca.png"), Path("scatter_pca_no_overlay.png"))
        ... # doctest: +SKIP
    """

    def __init__(self, fig: Figure, ax: Any, selected: Any, title: str) -> None:
        self.fig, self.ax, self.selected, self.title = fig, ax, selected, title

    def show(self, overlay: bool) -> None:
        """Show or hide the selection; the title and legend follow."""
        if self.selected is not None:
            self.selected.set_visible(overlay)
        with_sel = overlay and self.selected is not None
        self.ax.set_title(self.title + (" with the selection" if with_sel else ""))
        handles, labels = self.ax.get_legend_handles_labels()
        keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if h.get_visible()]
        for old in self.fig.legends:
            old.remove()
        # Under the map, never over its points ("best" would search every point, and still
        # cover some).
        self.fig.legend(
            [h for h, _ in keep],
            [lab for _, lab in keep],
            loc="lower center",
            ncol=2,
            fontsize=8,
            markerscale=2,
            frameon=False,
        )

    def save_pair(self, overlay_path: pathlib.Path, plain_path: pathlib.Path) -> None:
        """Write the map without, then with the selection, and close the figure."""
        try:
            self.show(False)
            _write(self.fig, plain_path)
            self.show(True)
            _write(self.fig, overlay_path)
        finally:
            close_figure(self.fig)


def pca_map(
    input_xy: np.ndarray, selected_xy: np.ndarray, explained: Sequence[float] = (0.0, 0.0)
) -> MapFigure:
    """The PCA map (see :func:`pca_figure`), to be saved with :meth:`MapFigure.save_pair`."""
    with _style():
        fig, axes = _figure(6.0, 5.0)
        ax = axes[0, 0]
        input_xy = np.asarray(input_xy, dtype=float).reshape(-1, 2)
        sel = _scatter_map(ax, input_xy, selected_xy, f"{len(input_xy):,}")
        ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
        m = MapFigure(fig, ax, sel, "PCA of the embeddings")
        m.show(True)
        fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the legend underneath
    return m


def umap_map(
    input_xy: np.ndarray, selected_xy: np.ndarray, n_neighbors: int, n_input: int
) -> MapFigure:
    """The UMAP map (see :func:`umap_figure`), to be saved with :meth:`MapFigure.save_pair`."""
    with _style():
        fig, axes = _figure(6.0, 5.0)
        ax = axes[0, 0]
        input_xy = np.asarray(input_xy, dtype=float).reshape(-1, 2)
        shown = f"{len(input_xy):,}" + ("" if len(input_xy) >= n_input else f" of {n_input:,}")
        sel = _scatter_map(ax, input_xy, selected_xy, shown)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        m = MapFigure(fig, ax, sel, f"UMAP of the embeddings, k = {n_neighbors}")
        m.show(True)
        fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the legend underneath
    return m


def _scatter_map(ax: Any, input_xy: np.ndarray, selected_xy: np.ndarray, shown: str) -> Any:
    """A 2-D map's points: the input (``shown`` of it in the legend), the selection on top.

    Returns:
        The selection's artist (hide it for the plain map), or None when nothing is selected.
    """
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
        rasterized=True,
    )
    if not len(selected_xy):
        return None
    return ax.scatter(
        selected_xy[:, 0],
        selected_xy[:, 1],
        s=max(size * 2.5, 8.0),
        c=COLORS["selected"],
        edgecolors="k",
        linewidths=0.3,
        label=f"selected ({len(selected_xy):,} shown)",
    )


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
    """An RGB thumbnail (see :func:`thresher.reports.thumbs.thumbnail`)."""
    return thumbnail(load_image, name, size)


def examples_sheet(
    pairs: Sequence[dict[str, Any]],
    load_image: Callable[[str], Image.Image] | None,
    path: pathlib.Path,
    thumb_px: int = 160,
) -> pathlib.Path:
    """Removed images (top row) above their nearest selected image (bottom row), as PNG.

    One column per pair, the distance above.

    Args:
        pairs: ``{"selectedImage", "removedImage", "distance"}`` dicts.
        load_image: Opens a file by relative name; None or a failure draws a placeholder.
        path: Target PNG.
        thumb_px: Thumbnail size in pixels.

    Returns:
        ``path``.
    """
    rows: list[list[Tile | None]] = [[], []]
    for p in pairs:
        for i, (key, colour) in enumerate(
            (("removedImage", COLORS["removed"]), ("selectedImage", COLORS["selected"]))
        ):
            name = str(p[key])
            rows[i].append(
                Tile(
                    name,
                    below=name,  # the whole relative name: img_000.png is in every folder
                    above=f"d = {p['distance']:.3f}" if i == 0 else "",
                    frame=colour,
                )
            )
    return tile_sheet(
        rows, load_image, path, thumb_px=thumb_px, row_labels=("removed", "nearest selected")
    )


def selected_grid_sheet(
    names: Sequence[str],
    load_image: Callable[[str], Image.Image] | None,
    path: pathlib.Path,
    ncols: int = 6,
    thumb_px: int = 150,
) -> pathlib.Path:
    """Thumbnails of selected images in pick order, each with its rank and name; written as PNG.

    Args:
        names: Filenames (relative to the INPUT root), first pick first.
        load_image: Opens a file by relative name; None or a failure draws a placeholder.
        path: Target PNG.
        ncols: Thumbnails per row.
        thumb_px: Thumbnail size in pixels.

    Returns:
        ``path`` (a sheet saying "no images were selected" when ``names`` is empty).
    """
    tiles = [Tile(n, below=f"{k + 1}. {n}", frame=COLORS["selected"]) for k, n in enumerate(names)]
    rows: list[list[Tile | None]] = [
        list(tiles[i : i + ncols]) for i in range(0, len(tiles), ncols)
    ]
    return tile_sheet(
        rows, load_image, path, thumb_px=thumb_px, empty_text="no images were selected"
    )
