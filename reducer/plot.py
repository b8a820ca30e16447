"""The scatter plot, plot.png: 800 x 700 pixels, one point per plotted row, coloured by label.

Made to be read by anyone, the morning after: a colour-blind-safe palette (Okabe and Ito's 8
colours, matplotlib's tab10 for 9 or 10 classes), the legend outside the data, markers whose
transparency and size follow the number of points (dense regions show how many overlap), the
label column's name on the legend or colour bar, and under the title the rows, the run's UTC
date and the map's quality in plain words.

Every text is drawn literally: matplotlib would read a label such as `$\\alpha$` as math (and
fail the job on `$\\nosuchcmd$`), or hand it to LaTeX when a matplotlibrc sets text.usetex.
"""

import datetime
import json
import re
from pathlib import Path

import numpy as np

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


def class_colours(count):
    """One colour per class (hex), or None when there are too many classes to tell apart:
    Okabe-Ito up to 8, tab10 up to 10, tab20 up to 20 (only the interactive map uses those)."""
    for palette in (OKABE_ITO, TAB10, TAB20):
        if count <= len(palette):
            return list(palette[:count])
    return None


def marker_style(points):
    """(alpha, size in points^2) for `points` markers: opaque and large for a few hundred,
    faint and small for tens of thousands, so overlap shows as density instead of a blot."""
    points = max(int(points), 1)
    alpha = float(np.clip(0.9 * (500 / points) ** 0.4, 0.08, 0.9))
    size = float(np.clip(20 * (1000 / points) ** 0.5, 2.0, 20.0))
    return alpha, size


def draw(path, title, coordinates, labels, subtitle=None, *, label_name=None, rows=None, run_at=None,
         quality=None):
    """Write the plot to `path` (PNG, 800 x 700).

    label_name: the label column's name; rows: the table's rows (more than the plotted ones when
    they are a sample); run_at: the run's UTC time (ISO 8601); quality: the manifest's quality
    section. When the caller does not pass them (publish.py passes only the subtitle today), they
    are read from the version folder being written, which holds model.json and embedding.csv by
    the time the plot is drawn, and the quality numbers from the subtitle.
    """
    import matplotlib

    matplotlib.use("Agg")  # no screen at night
    import matplotlib.pyplot as plt

    known = _beside(Path(path)) if label_name is None or rows is None else {}
    label_name = label_name or known.get("label_name")
    rows = rows if rows is not None else known.get("rows")
    if quality is None and subtitle:
        quality = quality_from_subtitle(subtitle)
    lines = caption(len(coordinates), rows, run_at, quality)
    if quality is None and subtitle:  # a subtitle this module cannot read: shown as given
        lines.append(subtitle)
    with plt.rc_context(LITERAL_TEXT):
        figure = build_figure(plt, title, coordinates, labels, lines, label_name)
        try:
            figure.savefig(path, format="png")
        finally:
            plt.close(figure)


def build_figure(plt, title, coordinates, labels, lines, label_name=None):
    """The figure itself (the tests look at its parts): `lines` are the subtitle's lines."""
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
        classes, codes = np.unique(labels.astype(str) if labels.dtype == object else labels, return_inverse=True)
        codes = codes.reshape(-1)
        if len(classes) <= MAX_LEGEND_CLASSES:
            handles = []
            for k, colour in enumerate(class_colours(len(classes))):
                chosen = codes == k
                handles.append(axes.scatter(*[p[chosen] for p in points], color=colour, **style))
            # Labels passed explicitly: given to scatter(), one starting with "_" would be left out.
            legend = figure.legend(handles, [str(c) for c in classes], title=name, loc="outside right upper",
                                   fontsize="small", markerscale=max(1.0, 40 / size) ** 0.5, frameon=False)
            for handle in legend.legend_handles:
                handle.set_alpha(1.0)
        else:
            numeric = np.issubdtype(classes.dtype, np.number)
            values = labels.astype(float) if numeric else codes
            drawn = axes.scatter(*points, c=values, cmap=CONTINUOUS, **style)
            bar = figure.colorbar(drawn, ax=axes, location="right")
            bar.solids.set_alpha(1.0)
            bar.set_label(name if numeric else f"{name} (class index, sorted by name)")
    axes.set_xlabel("component 1")
    axes.set_ylabel("component 2")
    if dims == 3:
        axes.set_zlabel("component 3")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    if lines:
        axes.set_title("\n".join(lines), fontsize=9, color="#333333")
    return figure


def caption(plotted, rows, run_at, quality):
    """The subtitle's lines: what is drawn and when, then the quality in words."""
    rows = plotted if rows is None else int(rows)
    when = _utc_text(run_at)
    drawn = f"{rows:,} rows" if plotted >= rows else f"{plotted:,} of {rows:,} rows (a fixed-seed sample)"
    lines = [f"{drawn}, run {when}"]
    if quality:
        lines += quality_words(quality)
    return lines


def quality_words(quality):
    """The map's quality as sentences a newcomer can read, PCA's number beside each."""
    pca = quality.get("pca") or {}
    lines = []
    trust = quality.get("trustworthiness_5")
    if trust is not None:
        lines.append(f"neighbours kept (trustworthiness): {trust:.2f}, PCA "
                     f"{_number(pca.get('trustworthiness_5'), '{:.2f}')}; 1 = all kept, 0.5 = random")
    knn = quality.get("knn_accuracy")
    if knn is not None:
        lines.append(f"points whose 10 nearest map neighbours mostly share their label: {knn:.0%}, "
                     f"PCA {_number(pca.get('knn_accuracy'), '{:.0%}')}")
    return lines


def _number(value, form):
    return "n/a" if value is None else form.format(value)


# What reducer/quality.py's subtitle() writes: "trustworthiness@5 0.936 (PCA 0.830)   kNN accuracy 0.861 (PCA 0.642)"
SUBTITLE = re.compile(r"trustworthiness@5 (?P<t>\S+) \(PCA (?P<tp>\S+)\)"
                      r"(?:\s+kNN accuracy (?P<k>\S+) \(PCA (?P<kp>\S+)\))?\s*")


def quality_from_subtitle(subtitle):
    """The quality numbers of a subtitle written by quality.subtitle(), or None when it says
    something else (then it is drawn as it is)."""
    found = SUBTITLE.fullmatch(subtitle)
    if not found:
        return None

    def value(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return None

    return {"trustworthiness_5": value(found["t"]), "knn_accuracy": value(found["k"]),
            "pca": {"trustworthiness_5": value(found["tp"]), "knn_accuracy": value(found["kp"])}}


def _beside(path):
    """{label_name, rows} from the files publish.py writes before the plot in the same folder
    (model.json, embedding.csv); {} where they are not there."""
    known = {}
    try:
        info = json.loads((path.parent / "model.json").read_text(encoding="utf-8"))
        known["label_name"] = info.get("label_column")
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with open(path.parent / "embedding.csv", "rb") as handle:
            known["rows"] = max(sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1, 0)
    except OSError:
        pass
    return known


def _utc_text(run_at):
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
