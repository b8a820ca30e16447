"""The scatter plot, drawn like the seed's figure: nipy_spectral colours, alpha 0.9, size 20.

Every text is drawn literally: matplotlib would read a label such as `$\\alpha$` as math (and
fail the job on `$\\nosuchcmd$`), or hand it to LaTeX when a matplotlibrc sets text.usetex.
"""

import numpy as np

MAX_LEGEND_CLASSES = 10
LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def draw(path, title, coordinates, labels, subtitle=None):
    import matplotlib

    matplotlib.use("Agg")  # no screen at night
    import matplotlib.pyplot as plt

    with plt.rc_context(LITERAL_TEXT):
        _draw(plt, path, title, coordinates, labels, subtitle)


def _draw(plt, path, title, coordinates, labels, subtitle):
    dims = coordinates.shape[1]
    figure = plt.figure(figsize=(8, 7), dpi=100)
    axes = figure.add_subplot(projection="3d" if dims == 3 else None)
    points = [coordinates[:, k] for k in range(dims)]
    style = dict(alpha=0.9, s=20, edgecolors="none")
    if labels is None:
        axes.scatter(*points, color="tab:blue", **style)
    else:
        classes, codes = np.unique(labels.astype(str) if labels.dtype == object else labels,
                                   return_inverse=True)
        cmap = plt.get_cmap("nipy_spectral")
        if len(classes) <= MAX_LEGEND_CLASSES:
            handles = []
            for k, name in enumerate(classes):
                chosen = codes == k
                colour = cmap(k / max(len(classes) - 1, 1) * 0.9)
                handles.append(axes.scatter(*[p[chosen] for p in points], color=colour, **style))
            # Labels passed explicitly: given to scatter(), one starting with "_" would be left out.
            axes.legend(handles, [str(name) for name in classes], title="label", fontsize="small",
                        markerscale=1.5, loc="best")
        else:
            numeric = np.issubdtype(classes.dtype, np.number)
            values = labels.astype(float) if numeric else codes
            drawn = axes.scatter(*points, c=values, cmap=cmap, **style)
            bar = figure.colorbar(drawn, ax=axes)
            bar.set_label("label" if numeric else "label (class index, sorted by name)")
    axes.set_xlabel("component 1")
    axes.set_ylabel("component 2")
    if dims == 3:
        axes.set_zlabel("component 3")
    axes.set_title(title if subtitle is None else f"{title}\n{subtitle}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
