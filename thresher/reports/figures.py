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
import json
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

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
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=color, alpha=0.9)
        if counts.sum() > 0:
            ax.set_yscale("log")
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
        selected_xy = np.asarray(selected_xy, dtype=float).reshape(-1, 2)
        size = float(np.clip(2000.0 / max(len(input_xy), 1), 3.0, 12.0))
        ax.scatter(
            input_xy[:, 0],
            input_xy[:, 1],
            s=size,
            c=COLORS["input"],
            alpha=0.5,
            linewidths=0,
            label=f"input ({len(input_xy):,} shown)",
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
        ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
        ax.set_title("PCA of the embeddings" + (" with the selection" if overlay else ""))
        ax.legend(loc="best", fontsize=8, markerscale=2)
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# distributions


def _table(ax: Any, rows: list[tuple[str, str]], title: str) -> None:
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    if not rows:
        rows = [("(empty)", "")]
    cells = [[ellipsize(k, 40), ellipsize(v, 70)] for k, v in rows[:20]]
    table = ax.table(cellText=cells, loc="center", cellLoc="left", colWidths=[0.35, 0.65])
    table.auto_set_font_size(False)
    table.set_fontsize(7)


def flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, JSON value) rows, for showing an unknown shape as a table."""
    if isinstance(d, dict):
        out: list[tuple[str, str]] = []
        for k, v in d.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, json.dumps(d, default=str))]


DISTRIBUTION_SETS = ("input", "selected", "random")


def distribution_figure(name: str, dist: dict[str, Any]) -> Figure:
    """One distribution (metadata, score or prediction) for input, selected and random.

    Numeric distributions are drawn as overlaid normalised histograms, categorical ones as
    grouped bars of fractions; any other shape is shown as a table rather than failing.

    Args:
        name: Readable input name, e.g. ``"METADATA lightly.sharpness"``.
        dist: ``{"type": "numeric"|"categorical", "bins"?, "input", "selected", "random"}``.

    Returns:
        The figure.
    """
    kind = dist.get("type") if isinstance(dist, dict) else None
    drawable = kind in ("numeric", "categorical")
    rows = 0 if drawable else min(len(flatten(dist)), 20)
    with _style():
        fig, axes = _figure(7.0, 3.0 if drawable else 0.6 + 0.25 * max(rows, 1))
        ax = axes[0, 0]
        try:
            if kind == "numeric":
                _draw_numeric(ax, dist)
            elif kind == "categorical":
                _draw_categorical(ax, dist)
            else:
                _table(ax, flatten(dist), f"{name} (type {kind!r}, shown as a table)")
                return fig
        except (KeyError, TypeError, ValueError) as e:
            ax.clear()
            _table(ax, flatten(dist), f"{name} (could not be drawn: {e})")
            return fig
        ax.set_title(name, fontsize=9)
        fig.tight_layout()
    return fig


def _sets(dist: dict[str, Any]) -> list[str]:
    return [s for s in DISTRIBUTION_SETS if isinstance(dist.get(s), dict)]


def _draw_numeric(ax: Any, dist: dict[str, Any]) -> None:
    edges = np.asarray(dist["bins"], dtype=float)
    for s in _sets(dist):
        counts = np.asarray(dist[s]["counts"], dtype=float)
        if len(counts) != len(edges) - 1:
            raise ValueError(f"{s} has {len(counts)} counts for {len(edges) - 1} bins")
        total = counts.sum()
        frac = counts / total if total > 0 else counts
        mean = (dist[s].get("metrics") or {}).get("mean")
        label = s if mean is None else f"{s} (mean {mean:.3g})"
        ax.stairs(frac, edges, label=label, color=COLORS[s], linewidth=1.8)
    ax.set_ylabel("fraction of samples")
    ax.set_xlabel("value")
    ax.legend(fontsize=8)


def _draw_categorical(ax: Any, dist: dict[str, Any]) -> None:
    sets = _sets(dist)
    cats: list[str] = []
    for s in sets:
        for c in dist[s]["counts"]:
            if str(c) not in cats:
                cats.append(str(c))
    if len(cats) > 30:  # keep the 30 most frequent input categories readable
        ref = dist[sets[0]]["counts"]
        cats = sorted(cats, key=lambda c: -float(ref.get(c, 0)))[:30]
    x = np.arange(len(cats))
    width = 0.8 / max(len(sets), 1)
    for i, s in enumerate(sets):
        counts = {str(k): float(v) for k, v in dist[s]["counts"].items()}
        total = sum(counts.values())
        frac = [counts.get(c, 0.0) / total if total else 0.0 for c in cats]
        ax.bar(x + (i - (len(sets) - 1) / 2) * width, frac, width=width, label=s, color=COLORS[s])
    ax.set_xticks(x)
    ax.set_xticklabels(
        [ellipsize(c, 18) for c in cats],
        rotation=45 if len(cats) > 6 else 0,
        ha="right" if len(cats) > 6 else "center",
        fontsize=7,
    )
    ax.set_ylabel("fraction of samples")
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
