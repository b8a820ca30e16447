"""The night at a glance: outputs/index.html, and an interactive map page per job.

`build(outputs_root)` reads what the runs left in the outputs folder (each job's status.json,
published manifest, plot and history/) and writes

    outputs/index.html          every job: status (and since when its files are stale), plot,
                                rows, quality next to PCA's, drift, history charts, links
    outputs/<job>/map.html      the published map: pan, zoom, hover, a legend that hides classes

Both are static, self-contained pages: styles, script and data inlined, nothing fetched but
the plots beside them, so they work from a file on a machine with no network. Each is written
to a temporary and renamed into place (files.py), like every output. A map page depends only
on the published files, so it is rewritten only when the published manifest changes. Nothing
here imports TensorFlow: `reducer report` rebuilds the pages in a second or two.
"""

import datetime
import html
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import numpy as np

from reducer import __version__, files, gate, history, published
from reducer.errors import PublishedRecordError
from reducer.published import Drift, Embedding, Manifest, Night, Quality, StatusRecord
from reducer.plot import CONTINUOUS, SINGLE, class_colours, marker_style
from reducer.report_assets import asset, render, script_json

log = logging.getLogger("reducer")

INDEX = "index.html"
MAP_PAGE = "map.html"
MAX_POINTS = published.SAMPLE_ROWS  # drawn on a map page; beyond, the fixed-seed sample plot.png draws
MAX_CLASSES = 20  # up to this many label values get a legend entry each; a numeric label beyond is a colour ramp
HISTORY_NIGHTS = 30  # attempts drawn in each history chart
MAP_FORMAT = "2"  # bumped when a map page's layout changes, so pages from older reducers are rewritten
NOT_PUBLISHING = ("failed", "rejected")
UNREADABLE = "unreadable"  # the state of a job whose published records cannot be read


@dataclass
class JobView:
    """What the index shows for one job folder."""

    name: str
    status: Optional[StatusRecord]
    manifest: Optional[Manifest]
    nights: list[Night]
    has_plot: bool = False
    map_href: Optional[str] = None
    map_problem: Optional[str] = None
    rejected_plot: Optional[str] = None
    links: list[tuple[str, str]] = field(default_factory=list)
    unreadable: Optional[str] = None  # the one line saying which record cannot be read, and why

    @property
    def state(self) -> str:
        if self.unreadable:
            return UNREADABLE
        if self.status is not None:
            return self.status.status.value
        return "ok" if self.manifest else "unknown"


@dataclass
class Report:
    path: Path
    jobs: int
    maps_written: int


def build(outputs_root: Path | str, unplaced: Iterable[StatusRecord] = ()) -> Report:
    """Write outputs_root/index.html and each published job's map.html; return a Report.

    unplaced: status records of this run's jobs that never reached the outputs folder (a job
    file that does not parse): shown too, though a later `reducer report` cannot know of them.
    A job whose records cannot be read is shown as unreadable, with the reason; the others as usual.

    The pages are a function of the folder's contents alone (no "written at", no absolute
    path; "3 hours ago" is worked out by the browser), so a run that changes nothing readers
    see leaves the same bytes."""
    root = Path(outputs_root)
    views, written = [], 0
    for folder in job_folders(root):
        view, wrote = gather(folder)
        views.append(view)
        written += wrote
    views += [JobView(str(record.job), record, None, []) for record in unplaced
              if not any(view.name == record.job for view in views)]
    views.sort(key=lambda view: view.name)
    target = root / INDEX
    _write(target, index_page(views))
    return Report(target, len(views), written)


def job_folders(root: Path | str) -> list[Path]:
    """Folders of the outputs folder that reducer wrote a job into, by name."""
    found = []
    for entry in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        if any((entry / name).exists() for name in ("status.json", "manifest.json", "history")):
            found.append(entry)
    return found


def gather(folder: Path) -> tuple[JobView, int]:
    """(JobView, 1 when its map page was rewritten else 0). A record that cannot be read makes
    the view unreadable (one line naming the file and key), logged as a warning."""
    try:
        status = published.read_status(folder / published.STATUS)
        manifest, digest = published.read_manifest_and_digest(folder / published.MANIFEST)
        nights = history.nights(folder)
    except PublishedRecordError as exc:
        log.warning("[%s] report: unreadable: %s", folder.name, exc)
        view = JobView(folder.name, None, None, [], unreadable=str(exc))
        view.links = _links(folder, view)
        return view, 0
    view = JobView(folder.name, status, manifest, nights)
    # What the published manifest lists is shown: the page is the same whatever sits in its way now.
    view.has_plot = (folder / "plot.png").is_file() or (manifest is not None and "plot" in manifest.files)
    wrote = 0
    if manifest is not None and digest is not None and (folder / published.EMBEDDING).is_file():
        try:
            wrote = write_map_page(folder, manifest, digest, status)
            view.map_href = f"{quote(folder.name)}/{MAP_PAGE}"
        except (OSError, PublishedRecordError) as exc:  # a damaged published file: say so, go on
            view.map_problem = f"no interactive map: {exc}"
            log.warning("[%s] report: %s", folder.name, view.map_problem)
    rejected = sorted((folder / "rejected").glob("*/plot.png")) if (folder / "rejected").is_dir() else []
    if rejected and view.state == "rejected":
        view.rejected_plot = "/".join(quote(part) for part in rejected[-1].relative_to(folder.parent).parts)
    view.links = _links(folder, view)
    return view, wrote


def _links(folder: Path, view: JobView) -> list[tuple[str, str]]:
    base = quote(folder.name)
    links = []
    if view.map_href:
        links.append(("interactive map", view.map_href))
    for label, name in (("embedding.csv", "embedding.csv"), ("manifest.json", "manifest.json"),
                        ("model (.keras)", "..data/model.keras"), ("model (.onnx)", "..data/model.onnx"),
                        ("model.json", "..data/model.json"),
                        ("status.json", "status.json"), ("history/", "history/")):
        if (folder / name).exists():
            links.append((label, f"{base}/{name}"))
    if view.rejected_plot:
        links.append(("rejected candidate's plot", view.rejected_plot))
    return links


def _write(target: Path | str, text: str) -> None:
    """`text` to `target` as UTF-8, through a temporary renamed into place."""
    target = Path(target)
    files.publish([(files.stage(target, lambda p: Path(p).write_text(text, encoding="utf-8", newline="\n")), target)])


# ---------------------------------------------------------------- the interactive map page


def write_map_page(folder: Path, manifest: Manifest, digest: str, status: Optional[StatusRecord] = None) -> int:
    """(Re)write folder/map.html from the published embedding.csv unless it is already the page of
    this manifest and this last attempt (a failed or rejected one is said at the top); returns
    1 when written, 0 when kept."""
    target = folder / MAP_PAGE
    stale = stale_notice(status)
    stamp = f"{digest} {MAP_FORMAT}"
    if stale is not None:  # the page changes with the last attempt too
        stamp += " " + _short_digest(json.dumps(stale, sort_keys=True))
    try:
        with open(target, encoding="utf-8") as handle:
            if f'<meta name="reducer-map" content="{stamp}">' in handle.read(4096):
                return 0
    except (OSError, UnicodeDecodeError):
        pass
    embedding = published.read_embedding(folder / published.EMBEDDING, limit=MAX_POINTS)
    _write(target, map_page(folder.name, manifest, stamp, embedding, stale))
    return 1


def _short_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stale_notice(status: Optional[StatusRecord]) -> Optional[dict[str, str]]:
    """What a map page says at its top when the job's last attempt did not publish (failed or
    rejected): {"state", "what", "when", "reason"}; None when the map is the last attempt's."""
    if status is None or status.status.value not in NOT_PUBLISHING:
        return None
    what = ("The quality gate rejected the last map," if status.status.value == "rejected"
            else "The last attempt failed,")
    return {"state": status.status.value, "what": what, "when": _when(status.attempted_at),
            "reason": " ".join(str(status.reason or "").split())}


def warnings_of(manifest: Optional[Manifest]) -> list[str]:
    """The run's warnings, as its summary line gives them: worse than PCA, the objective's fallback."""
    if manifest is None:
        return []
    found = []
    quality = manifest.quality
    if quality is not None and gate.worse_than_pca(quality.to_json()):
        found.append(f"worse than PCA on trustworthiness ({_number(quality.trustworthiness_5)} against "
                     f"{_number(quality.pca.get('trustworthiness_5'))}) and kNN accuracy "
                     f"({_number(quality.knn_accuracy, '{:.1%}')} against "
                     f"{_number(quality.pca.get('knn_accuracy'), '{:.1%}')})")
    fallback = manifest.training.extra.get("objective_fallback")
    if fallback:
        found.append(" ".join(str(fallback).split()))
    return found


def _rounded(values: Any) -> list[float]:
    """Coordinates to about 1/100,000 of their spread: enough to zoom in 1,000 times, half the bytes."""
    values = np.asarray(values, dtype=np.float64)
    spread = float(np.ptp(values)) if len(values) else 0.0
    digits = 6 if spread <= 0 else int(min(12, max(0, 5 - math.floor(math.log10(spread)))))
    return [float(v) for v in np.round(values, digits)]


def _sorted_names(names: list[str]) -> list[str]:
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def _hex(rgba: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgba[:3])


def colour_groups(labels: Optional[list[str]], count: int) -> dict[str, Any]:
    """How points are coloured: {"names", "colours", "of" (group per point), "ramp"}. Up to
    MAX_CLASSES label values: one legend entry (and palette colour) each; a numeric label with
    more values: 32 bins along a colour ramp; more text values: an entry each, ramp colours."""
    from matplotlib import colormaps

    if labels is None:
        return {"names": ["all rows"], "colours": [SINGLE], "of": [0] * count, "ramp": None}
    names = _sorted_names(list(dict.fromkeys(labels)))
    values = None
    if len(names) > MAX_CLASSES:
        try:
            values = np.array([float(v) for v in labels])
        except ValueError:  # text: one entry per value
            values = None
        if values is not None and not np.isfinite(values).all():
            values = None
    if values is not None:
        bins = 32
        low, high = float(values.min()), float(values.max())
        span = (high - low) or 1.0
        of = np.minimum(((values - low) / span * bins).astype(int), bins - 1).tolist()
        ramp = colormaps[CONTINUOUS]
        return {"names": [f"bin {k + 1}" for k in range(bins)],
                "colours": [_hex(ramp(k / (bins - 1))) for k in range(bins)],
                "of": of, "ramp": [f"{low:.4g}", f"{high:.4g}"]}
    index = {name: k for k, name in enumerate(names)}
    colours = class_colours(len(names))
    if colours is None:
        ramp = colormaps[CONTINUOUS]
        colours = [_hex(ramp(k / max(len(names) - 1, 1))) for k in range(len(names))]
    return {"names": names, "colours": colours, "of": [index[v] for v in labels], "ramp": None}


def _field(name: str, values: Any, count: int) -> dict[str, Any]:
    """One column a map can be coloured by and searched in: its values (names and a code per
    point) and its colours (colour_groups: a palette for few values, a ramp for many numbers)."""
    texts = [str(v) for v in values]
    codes = {text: k for k, text in enumerate(dict.fromkeys(texts))}
    return {"name": name, "values": {"names": list(codes), "codes": [codes[v] for v in texts]},
            "groups": colour_groups(texts, count)}


def map_data(name: str, manifest: Manifest, embedding: Embedding) -> dict[str, Any]:
    """The JSON a map page draws: coordinates, ids, and the label and kept columns as fields."""
    dataset = manifest.dataset
    drawn = len(embedding.ids)
    fields = []
    if embedding.labels is not None:
        fields.append(_field(str(dataset.label_column or "label"), embedding.labels, drawn))
    fields += [_field(column, values, drawn) for column, values in embedding.kept.items()]
    alpha, size = marker_style(drawn)
    single = colour_groups(None, drawn)
    return {
        "job": name, "rows": embedding.rows, "drawn": drawn,
        "components": [_rounded(embedding.coordinates[:, k]) for k in range(embedding.coordinates.shape[1])],
        "ids": [str(v) for v in embedding.ids],
        "idName": dataset.id_column or "row",
        "labelName": dataset.label_column or "label",
        "fields": fields,
        "groups": fields[0]["groups"] if embedding.labels is not None else single,  # the first colouring
        "single": single,
        # A canvas dot of 1-2 pixels needs more ink than plot.png's marker to be seen at all.
        "alpha": round(max(alpha, 0.3), 3), "radius": round(max(1.2, math.sqrt(size) * 0.75), 2),
    }


def map_page(name: str, manifest: Manifest, stamp: str, embedding: Embedding,
             stale: Optional[dict[str, str]] = None) -> str:
    data = map_data(name, manifest, embedding)
    fields = [field["name"] for field in data["fields"]]
    return render("map.html", name=name, stamp=stamp, data=data, rows=embedding.rows, shown=len(embedding.ids),
                  seed=published.SAMPLE_SEED, published=_when(manifest.finished_at),
                  made_by=str(manifest.versions.get("reducer") or ""), dims=len(data["components"]),
                  fields=fields, searchable=", ".join([str(data["idName"]), *fields]), stale=stale,
                  warnings=warnings_of(manifest))


# ---------------------------------------------------------------- the index page


def _parse(moment: Optional[str]) -> Optional[datetime.datetime]:
    if not moment:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _when(moment: Optional[str]) -> str:
    parsed = _parse(moment)
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if parsed else "unknown"


def _time(moment: Optional[str]) -> str:
    """The moment as '2026-11-01 02:00 UTC', marked up so that the page's script adds how long ago."""
    parsed = _parse(moment)
    if parsed is None:
        return "unknown"
    iso = parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{iso}" data-ago>{_when(moment)}</time>'


def stale_since(view: JobView) -> Optional[tuple[Optional[str], int]]:
    """(the first attempt of the current run of failed or rejected ones, how many) when the
    published files are older than the last attempt; None when they are current."""
    if view.state not in NOT_PUBLISHING:
        return None
    streak = []
    for night in reversed(view.nights):
        if night.status not in NOT_PUBLISHING:
            break
        streak.append(night)
    if not streak:
        return (view.status.attempted_at if view.status else None), 1
    return streak[-1].time, len(streak)


def _number(value: Optional[float], form: str = "{:.3f}") -> str:
    return "&ndash;" if value is None else form.format(value)


def _quality_rows(quality: Optional[Quality]) -> str:
    if quality is None:
        return '<p class="muted">No quality measured ([quality] enabled = false).</p>'
    pca = quality.pca
    measures = (
        ("neighbours kept (trustworthiness, 5 neighbours; 1 best, 0.5 random)", "trustworthiness_5", "{:.3f}"),
        ("neighbours kept (trustworthiness, 12 neighbours)", "trustworthiness_12", "{:.3f}"),
        ("label agrees with its 10 nearest map neighbours (kNN accuracy)", "knn_accuracy", "{:.1%}"),
        ("reconstruction error (mean squared, lower is better)", "reconstruction_mse", "{:.4f}"),
    )
    body = "".join(f'<tr><td>{label}</td><td class="num">{_number(getattr(quality, key), form)}</td>'
                   f'<td class="num">{_number(pca.get(key), form)}</td></tr>'
                   for label, key, form in measures if getattr(quality, key) is not None or pca.get(key) is not None)
    sampled = (f'<p class="muted">Measured on a fixed-seed sample of {quality.rows:,} rows.</p>'
               if quality.sampled and quality.rows is not None else "")
    return (f'<table><tr><th>quality</th><th class="num">this map</th><th class="num">PCA</th></tr>{body}</table>'
            f"{sampled}")


def _drift_text(drift: Optional[Drift]) -> str:
    if drift is None:
        return "First published night, or continuity off: no drift measured."
    e = html.escape
    parts = [f"shared rows moved by a median {_number(drift.median_displacement)} of the map's spread"]
    if drift.neighbor_overlap is not None:
        parts.append(f"kept {drift.neighbor_overlap:.0%} of their 10 nearest map neighbours")
    counts = ", ".join(f"{getattr(drift, key):,} {word}" for key, word in (
        ("shared_rows", "shared"), ("added_rows", "added"), ("removed_rows", "removed")))
    return e("Since the previous published night: " + "; ".join(parts) + (f" ({counts} rows)." if counts else "."))


def chart(nights: Sequence[Night], key: str, title: str, form: str) -> str:
    """A small SVG line chart of one measure over the last nights; each point has a tooltip."""
    points = [(n.time, getattr(n, key), n.status.value) for n in nights if getattr(n, key) is not None]
    if not points:
        return (f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
                '<p class="muted">no data yet</p></figure>')
    width, height, pad = 150, 48, 6
    values = [v for _, v, _ in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(points) - 1, 1)

    def xy(k: int, value: float) -> tuple[float, float]:
        y = height - pad - ((value - low) / span if high > low else 0.5) * (height - 2 * pad)
        return round(pad + k * step if len(points) > 1 else width / 2, 1), round(y, 1)

    published = [(k, v) for k, (_, v, s) in enumerate(points) if s != "rejected"]
    line = " ".join(f"{x},{y}" for x, y in (xy(k, v) for k, v in published))
    dots = []
    for k, (moment, value, status) in enumerate(points):
        x, y = xy(k, value)
        colour = "#b3261e" if status == "rejected" else "#35618f"
        fill = "#fff" if status == "rejected" else colour
        tip = html.escape(f"{_when(moment)}: {form.format(value)} ({status})")
        dots.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{fill}" stroke="{colour}" stroke-width="1.5">'
                    f"<title>{tip}</title></circle>")
    last = form.format(values[-1])
    summary = f"last {last}; range {form.format(low)} to {form.format(high)} over {len(points)} night(s)"
    return (f'<figure class="chart"><figcaption>{html.escape(title)}: {html.escape(last)}</figcaption>'
            f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{html.escape(title)}: {html.escape(summary)}">'
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f6f7f9" stroke="#d9dce0"/>'
            f'<polyline points="{line}" fill="none" stroke="#35618f" stroke-width="1.5"/>{"".join(dots)}</svg>'
            f'<div class="muted">{html.escape(form.format(low))} &ndash; {html.escape(form.format(high))}</div>'
            '</figure>')


def _notice(view: JobView) -> str:
    e = html.escape
    if view.unreadable:
        return (f'<div class="notice failed"><strong>Unreadable:</strong> {e(view.unreadable)}<br>'
                f"Move the file away, or run the job again, to show this job.</div>")
    reason = view.status.reason if view.status else None
    if view.state in NOT_PUBLISHING:
        since, attempts = stale_since(view) or (None, 1)
        published = (view.status.published_at if view.status else None) or (
            view.manifest.finished_at if view.manifest else None)
        what = ("the quality gate rejected the last map" if view.state == "rejected" else "the last attempt failed")
        if view.manifest is None:
            tail = "Nothing has been published yet."
        else:
            tail = (f"The files below are from {e(_when(published))}: stale since {_time(since)}, "
                    f"{attempts} attempt{'s' if attempts != 1 else ''} without a new map.")
        return (f'<div class="notice {e(view.state)}"><strong>{e(what.capitalize())}:</strong> {e(str(reason or ""))}'
                f"<br>{tail}</div>")
    if view.state == "unchanged" and reason:
        return f'<p class="muted">Unchanged: {e(str(reason))}; the published files are current.</p>'
    return ""


def _job_section(view: JobView) -> str:
    e = html.escape
    manifest = view.manifest
    attempted = view.status.attempted_at if view.status else None
    published = (manifest.finished_at if manifest else None) or (view.status.published_at if view.status else None)
    picture = ""
    if view.has_plot:
        image = f'<img src="{quote(view.name)}/plot.png" alt="plot of {e(view.name)}" width="480" height="420">'
        picture = f'<a href="{view.map_href}" title="open the interactive map">{image}</a>' if view.map_href else image
    facts = []
    if manifest is not None:
        dataset = manifest.dataset
        facts.append(f"<tr><th>rows</th><td>{dataset.rows:,} &times; {dataset.columns:,} "
                     f"columns (dataset {e(str(dataset.name))})</td></tr>")
        if dataset.label_column:
            facts.append(f"<tr><th>label</th><td>{e(str(dataset.label_column))}</td></tr>")
    facts.append(f"<tr><th>last attempt</th><td>{_time(attempted)}</td></tr>")
    facts.append(f"<tr><th>published</th><td>{e(_when(published)) if published else 'never'}</td></tr>")
    final_loss = manifest.training.final_loss if manifest else None
    if final_loss is not None:
        facts.append(f"<tr><th>final loss</th><td>{final_loss:.6f}</td></tr>")
    recent = view.nights[-HISTORY_NIGHTS:]
    measures = (("trustworthiness", "neighbours kept", "{:.3f}"), ("knn_accuracy", "kNN accuracy", "{:.1%}"),
                ("final_loss", "final loss", "{:.4g}"), ("drift", "drift", "{:.3f}"))
    charts = ""
    if any(getattr(night, key) is not None for night in recent for key, _, _ in measures):
        charts = (f'<div class="charts">{"".join(chart(recent, *measure) for measure in measures)}</div>'
                  f'<p class="muted">The last {len(recent)} attempt(s), from history/: filled dots published, '
                  f"hollow red dots rejected.</p>")
    links = "".join(f'<a href="{href}">{e(label)}</a>' for label, href in view.links)
    problem = f'<p class="muted">{e(view.map_problem)}</p>' if view.map_problem else ""
    fallback = manifest.training.extra.get("objective_fallback") if manifest else None
    warning = f'<p class="warning"><strong>Warning:</strong> {e(str(fallback))}</p>' if fallback else ""
    return f"""<section class="job" id="job-{e(view.name)}">
<h2>{e(view.name)} <span class="badge {e(view.state)}">{e(view.state)}</span></h2>
{_notice(view)}{warning}
<div class="columns">{picture}
<div class="facts">
<table>{''.join(facts)}</table>
{_quality_rows(manifest.quality) if manifest else ''}
<p>{_drift_text(manifest.drift) if manifest else ''}</p>
{charts}
<p class="links">{links}</p>{problem}
</div></div>
</section>"""


def _overview(views: Sequence[JobView]) -> str:
    e = html.escape
    rows = []
    for view in views:
        manifest = view.manifest
        quality = manifest.quality if manifest else None
        drift = manifest.drift.median_displacement if manifest and manifest.drift else None
        rows.append(
            f'<tr><td><a href="#job-{e(view.name)}">{e(view.name)}</a></td>'
            f'<td><span class="badge {e(view.state)}">{e(view.state)}</span></td>'
            f'<td>{e(_when(view.status.attempted_at if view.status else None))}</td>'
            f'<td class="num">{_number(manifest.dataset.rows if manifest else None, "{:,}")}</td>'
            f'<td class="num">{_beside_pca(quality, "trustworthiness_5", "{:.3f}")}</td>'
            f'<td class="num">{_beside_pca(quality, "knn_accuracy", "{:.1%}")}</td>'
            f'<td class="num">{_number(drift)}</td></tr>')
    return ('<table class="overview"><tr><th>job</th><th>status</th><th>last attempt</th><th class="num">rows</th>'
            '<th class="num">neighbours kept (PCA)</th><th class="num">kNN accuracy (PCA)</th>'
            f'<th class="num">drift</th></tr>{"".join(rows)}</table>')


def _beside_pca(quality: Optional[Quality], key: str, form: str) -> str:
    value = getattr(quality, key) if quality is not None else None
    if quality is None or value is None:
        return "&ndash;"
    return f"{_number(value, form)} ({_number(quality.pca.get(key), form)})"


def totals(states: Sequence[str]) -> str:
    """'6 jobs: 4 ok, 1 unchanged, 1 failed' (the CLI's last summary line says the same)."""
    order = ["ok", "unchanged", "rejected", "failed", UNREADABLE, "error"]
    counted = {state: states.count(state) for state in dict.fromkeys([*order, *states])}
    parts = ", ".join(f"{n} {state}" for state, n in counted.items() if n)
    return f"{len(states)} job{'' if len(states) == 1 else 's'}" + (f": {parts}" if parts else "")


def index_page(views: Sequence[JobView]) -> str:
    e = html.escape
    body = "".join(_job_section(view) for view in views) or "<p>No job has run in this outputs folder yet.</p>"
    attempts = {t: parsed for t in (v.status.attempted_at for v in views if v.status)
                if t and (parsed := _parse(t)) is not None}
    newest = f"Newest attempt {_time(max(attempts, key=attempts.__getitem__))}; " if attempts else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reducer: {e(totals([v.state for v in views]))}</title>
<link rel="icon" href="data:,">
<style>{asset("page.css")}</style>
</head>
<body>
<header>
<h1>reducer report</h1>
<p class="muted">{e(totals([v.state for v in views]))}. {newest}written by reducer {e(__version__)}. Click a plot
for its interactive map.</p>
</header>
<main>
{_overview(views) if views else ''}
{body}
</main>
<script>{asset("ago.js")}</script>
</body>
</html>
"""
