"""The scatter plot, plot.png: 800 x 700 pixels, one point per plotted row, coloured by label.

Made to be read by anyone, the morning after: a colour-blind-safe palette (Okabe and Ito's 8
colours, matplotlib's tab10 for 9 or 10 classes), the legend outside the data, markers whose
transparency and size follow the number of points (dense regions show how many overlap), the
label column's name on the legend or colour bar, and under the title the rows, the run's UTC
date and the map's quality in plain words. A map whose distinct rows sit on top of each other
(the manifest's stacked-rows warning) says so in one red line under the axes: its good numbers
above must not pass for a good picture of two dots.

Every text is drawn literally: matplotlib would read a label such as `$\\alpha$` as math (and
fail the job on `$\\nosuchcmd$`), or hand it to LaTeX when a matplotlibrc sets text.usetex.
"""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path
from typing import Any, Optional

import numpy as np

from reducer.published import Quality
from reducer.quality import knn_k

MAX_LEGEND_CLASSES = 10
LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}
SIZE_INCHES, DPI = (8, 7), 100  # 800 x 700 pixels, as always
# Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision
# deficiency. Black last: it hides the points drawn under it.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
         "#bcbd22", "#17becf")
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
         "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
         "#17becf", "#9edae5")
CONTINUOUS = "viridis"  # perceptually uniform, readable in grey and by colour-blind readers
SINGLE = OKABE_ITO[0]
WARNING_COLOUR = "#B3261E"  # a dark red no palette above draws points in
WARNING_WIDTH = 90  # characters a line of the warning holds across the 800 pixels


def class_colours(count: int) -> Optional[list[str]]:
    """One colour per class (hex), or None when there are too many classes to tell apart:
    Okabe-Ito up to 8, tab10 up to 10, tab20 up to 20 (only the interactive map uses those)."""
    for palette in (OKABE_ITO, TAB10, TAB20):
        if count <= len(palette):
            return list(palette[:count])
    return None


def label_numbers(labels: Any) -> Optional[np.ndarray]:
    """The labels as numbers (float64) when every one reads as a finite number, else None. A
    CSV's labels arrive as text: "10.68" must sort after "9.5", not after "1.7". The plot and the
    map page (report.py) colour by these, so the two never disagree."""
    try:
        values = np.asarray(labels).astype(np.float64)
    except (TypeError, ValueError):
        return None
    return values if np.isfinite(values).all() else None


def sorted_names(names: list[str]) -> list[str]:
    """Label values in order: by number when every one reads as one, else by text."""
    return sorted(names, key=float) if label_numbers(names) is not None else sorted(names)


def marker_style(points: int) -> tuple[float, float]:
    """(alpha, size in points^2) for `points` markers: opaque and large for a few hundred,
    faint and small for tens of thousands, so overlap shows as density instead of a blot."""
    points = max(int(points), 1)
    alpha = float(np.clip(0.9 * (500 / points) ** 0.4, 0.08, 0.9))
    size = float(np.clip(20 * (1000 / points) ** 0.5, 2.0, 20.0))
    return alpha, size


def draw(path: Path | str, title: str, coordinates: np.ndarray, labels: Optional[np.ndarray], *,
         label_name: Optional[str] = None, rows: Optional[int] = None, run_at: Optional[str] = None,
         quality: Optional[Quality] = None, warning: Optional[str] = None) -> None:
    """Write the plot to `path` (PNG, 800 x 700) from values: the plotted rows' coordinates and
    labels; label_name: the label column's name; rows: the table's rows (more than the plotted
    ones when they are a sample); run_at: the run's UTC time (ISO 8601); quality: the run's
    measured quality; warning: one line drawn in red under the axes (quality.stacking_headline of
    the manifest's `map` section), None for none. Nothing is read back from files or parsed from text."""
    import matplotlib

    matplotlib.use("Agg")  # no screen at night
    import matplotlib.pyplot as plt

    lines = caption(len(coordinates), rows, run_at, quality)
    with plt.rc_context(LITERAL_TEXT):
        figure = build_figure(plt, title, coordinates, labels, lines, label_name, warning)
        try:
            figure.savefig(path, format="png")
        finally:
            plt.close(figure)


def build_figure(plt: Any, title: str, coordinates: np.ndarray, labels: Optional[np.ndarray], lines: list[str],
                 label_name: Optional[str] = None, warning: Optional[str] = None) -> Any:
    """The figure itself (the tests look at its parts): `lines` are the subtitle's lines,
    `warning` the red line under the axes (none when None)."""
    dims = coordinates.shape[1]
    figure = plt.figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.add_subplot(projection="3d" if dims == 3 else None)
    points = [coordinates[:, k] for k in range(dims)]
    alpha, size = marker_style(len(coordinates))
    style = dict(alpha=alpha, s=size, edgecolors="none")
    name = str(label_name) if label_name else "label"
    if labels is None:
        axes.scatter(*points, color=SINGLE, **style)
    else:
        texts = labels.astype(str)
        classes = sorted_names(list(dict.fromkeys(texts.tolist())))
        index = {name: k for k, name in enumerate(classes)}
        codes = np.array([index[text] for text in texts.tolist()], dtype=np.int64)
        if len(classes) <= MAX_LEGEND_CLASSES:
            handles = []
            for k, colour in enumerate(class_colours(len(classes)) or []):  # never None up to 10 classes
                chosen = codes == k
                handles.append(axes.scatter(*[p[chosen] for p in points], color=colour, **style))
            # Labels passed explicitly: given to scatter(), one starting with "_" would be left out.
            legend = figure.legend(handles, [str(c) for c in classes], title=name, loc="outside right upper",
                                   fontsize="small", markerscale=max(1.0, 40 / size) ** 0.5, frameon=False)
            for handle in legend.legend_handles:
                handle.set_alpha(1.0)
        else:
            numbers = label_numbers(labels)
            drawn = axes.scatter(*points, c=codes if numbers is None else numbers, cmap=CONTINUOUS, **style)
            bar = figure.colorbar(drawn, ax=axes, location="right")
            bar.solids.set_alpha(1.0)
            bar.set_label(name if numbers is not None else f"{name} (class index, sorted by name)")
    # One unit as long across as up (and deep): distances on the plot are the map's distances.
    axes.set_aspect("equal", adjustable="datalim" if dims == 2 else "box")
    axes.set_xlabel("component 1")
    axes.set_ylabel("component 2")
    if dims == 3:
        axes.set_zlabel("component 3")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    if lines:
        axes.set_title("\n".join(lines), fontsize=9, color="#333333")
    if warning:
        # A figure-level label: the constrained layout makes room for it below the axes and the legend.
        figure.supxlabel(textwrap.fill(warning, WARNING_WIDTH), fontsize=10, fontweight="bold",
                         color=WARNING_COLOUR)
    return figure


def caption(plotted: int, rows: Optional[int], run_at: Optional[str], quality: Optional[Quality]) -> list[str]:
    """The subtitle's lines: what is drawn and when, then the quality in words."""
    rows = plotted if rows is None else int(rows)
    when = _utc_text(run_at)
    drawn = f"{rows:,} rows" if plotted >= rows else f"{plotted:,} of {rows:,} rows (a fixed-seed sample)"
    lines = [f"{drawn}, run {when}"]
    if quality is not None:
        lines += quality_words(quality)
    return lines


def quality_words(quality: Quality) -> list[str]:
    """The map's quality as sentences a newcomer can read, PCA's number beside each."""
    pca = quality.pca
    lines = []
    trust = quality.trustworthiness_5
    if trust is not None:
        lines.append(f"neighbours kept (trustworthiness): {trust:.2f}, PCA "
                     f"{_number(pca.get('trustworthiness_5'), '{:.2f}')}; 1 = all kept, 0.5 = random")
    knn, k = quality.knn_accuracy, knn_k(quality.knn)  # k: the one used, fewer than 10 on small classes
    if knn is not None:
        lines.append(f"points whose {k} nearest map neighbours mostly share their label: {knn:.0%}, "
                     f"PCA {_number(pca.get('knn_accuracy'), '{:.0%}')}")
    r2 = quality.knn_r2  # a label that holds values: how well the k nearest map neighbours tell it
    if r2 is not None:
        lines.append(f"label values told from the {k} nearest map neighbours (kNN R^2): {r2:.2f}, "
                     f"PCA {_number(pca.get('knn_r2'), '{:.2f}')}; 1 = exactly, 0 = no better than the mean")
    return lines


def _number(value: Optional[float], form: str) -> str:
    return "n/a" if value is None else form.format(value)


def _utc_text(run_at: Optional[str]) -> str:
    """'2026-11-01 02:00 UTC' for an ISO time (now when None)."""
    moment = None
    if run_at:
        try:
            moment = datetime.datetime.fromisoformat(str(run_at).replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
