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
import json
import logging
import math
from collections.abc import Iterable, Sequence
import os
from dataclasses import dataclass, field, replace as replaced
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import numpy as np

from reducer import __version__, files, gate, history, publish, published
from reducer.errors import PublishedRecordError
from reducer.published import Baseline, Drift, Embedding, Manifest, Night, Quality, StatusRecord
from reducer.plot import CONTINUOUS, SINGLE, class_colours, label_numbers, marker_style, sorted_names
from reducer.quality import knn_k
from reducer.report_assets import asset, render, script_json

log = logging.getLogger("reducer")

INDEX = "index.html"
MAP_PAGE = "map.html"
MAX_POINTS = published.SAMPLE_ROWS  # drawn on a map page; beyond, the fixed-seed sample plot.png draws
MAX_CLASSES = 20  # up to this many label values get a legend entry each; a numeric label beyond is a colour ramp
HISTORY_NIGHTS = 30  # attempts drawn in each history chart
MAP_FORMAT = "4"  # bumped when a map page's layout changes, so pages from older reducers are rewritten
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

    The map pages are a function of the published files alone (no "written at", no absolute
    path; "3 hours ago" is worked out by the browser). index.html, rebuilt at the end of every
    run, is marked with the UTC time it was built (a `reducer-built` meta tag and its header), so
    a page left by a run that stopped before its report can be told from a fresh one; nothing
    else in it depends on the clock."""
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
    built = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write(target, index_page(views, built))
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
        # The published version folder, resolved once: the manifest, the map and its page are one run's.
        version = publish.published_version(folder)
        base = version if version is not None else folder  # plain files: a job folder from an older reducer
        manifest, digest = published.read_manifest_and_digest(base / published.MANIFEST)
        nights = history.nights(folder)
    except PublishedRecordError as exc:
        log.warning("[%s] report: unreadable: %s", folder.name, exc)
        view = JobView(folder.name, None, None, [], unreadable=str(exc))
        view.links = _links(folder, view)
        return view, 0
    if status is not None and status.reason and files.is_private(folder / published.STATUS):
        # The page is for everyone; the reason may quote a cell of an input others cannot read.
        status = replaced(status, reason="see status.json (readable by its owner only, as the job's "
                                                    "input is)")
    view = JobView(folder.name, status, manifest, nights)
    # What the published manifest lists is shown: the page is the same whatever sits in its way now.
    view.has_plot = (folder / "plot.png").is_file() or (manifest is not None and "plot" in manifest.files)
    wrote = 0
    if manifest is not None and digest is not None and (base / published.EMBEDDING).is_file():
        try:
            wrote = write_map_page(base, manifest, digest, status, name=folder.name,
                                   mode=_mode_of(base / published.MANIFEST))
            linked = version is None or (folder / MAP_PAGE).is_symlink() and os.readlink(folder / MAP_PAGE) == (
                f"{publish.DATA_LINK}/{MAP_PAGE}")
            view.map_href = f"{quote(folder.name)}/{MAP_PAGE if linked else publish.DATA_LINK + '/' + MAP_PAGE}"
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


def _write(target: Path | str, text: str, mode: int = files.PUBLIC) -> None:
    """`text` to `target` as UTF-8, through a temporary renamed into place."""
    target = Path(target)
    files.publish([(files.stage(target, lambda p: Path(p).write_text(text, encoding="utf-8", newline="\n"), mode),
                    target)])


def _mode_of(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return files.PUBLIC


# ---------------------------------------------------------------- the interactive map page


def write_map_page(folder: Path, manifest: Manifest, digest: str, status: Optional[StatusRecord] = None,
                   name: Optional[str] = None, mode: int = files.PUBLIC) -> int:
    """(Re)write folder/map.html from folder/embedding.csv unless it is already the page of this
    manifest (`digest`: the sha256 of its file) and this last attempt (a failed or rejected one is
    said at the top); returns 1 when written, 0 when kept. `folder` is a version folder
    (publish.py writes the page there before the switch; the report, for runs published without
    one or when the last attempt changed) or a job folder of plain files from an older reducer;
    `name`: the job's (default: the folder's)."""
    target = folder / MAP_PAGE
    stale = stale_notice(status)
    stamp = f"{digest} {MAP_FORMAT}"
    if stale is not None:  # the page changes with the last attempt too
        stamp += " " + _short_digest(json.dumps(stale, sort_keys=True))
    try:
        if f'<meta name="reducer-map" content="{stamp}">' in files.read_regular(target).decode("utf-8")[:4096]:
            return 0
    except (OSError, UnicodeDecodeError):
        pass
    embedding = published.read_embedding(folder / published.EMBEDDING, limit=MAX_POINTS)
    _write(target, map_page(name or folder.name, manifest, stamp, embedding, stale), mode)
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
    """The run's warnings, as its summary line gives them: worse than PCA, the objective's fallback,
    rows stacked on top of each other."""
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
    # The manifest's own `warnings` (stacked rows, issue 23: pipeline.check_stacking).
    found += [" ".join(w.split()) for w in manifest.warnings]
    return found


def _rounded(values: Any) -> list[float]:
    """Coordinates to about 1/100,000 of their spread: enough to zoom in 1,000 times, half the bytes."""
    values = np.asarray(values, dtype=np.float64)
    spread = float(np.ptp(values)) if len(values) else 0.0
    digits = 6 if spread <= 0 else int(min(12, max(0, 5 - math.floor(math.log10(spread)))))
    return [float(v) for v in np.round(values, digits)]


def _hex(rgba: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgba[:3])


def colour_groups(labels: Optional[list[str]], count: int) -> dict[str, Any]:
    """How points are coloured: {"names", "colours", "of" (group per point), "ramp"}. Up to
    MAX_CLASSES label values: one legend entry (and palette colour) each; a numeric label with
    more values: 32 bins along a colour ramp; more text values: an entry each, ramp colours."""
    from matplotlib import colormaps

    if labels is None:
        return {"names": ["all rows"], "colours": [SINGLE], "of": [0] * count, "ramp": None}
    names = sorted_names(list(dict.fromkeys(labels)))
    values = label_numbers(labels) if len(names) > MAX_CLASSES else None  # None: text, an entry per value
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


def iso(moment: Optional[str]) -> Optional[str]:
    """The moment as '2026-11-01T02:00:00Z' (a <time> element's datetime), or None when unknown."""
    parsed = _parse(moment)
    return None if parsed is None else parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _number(value: Optional[float], form: str = "{:.3f}") -> Optional[str]:
    return None if value is None else form.format(value)


# The measures of the index: (key in Quality and Night, words, format, the least range a sparkline
# spans: never magnified beyond it, so 0.966 to 0.967 is a flat line, not floor to ceiling).
MEASURES = (("trustworthiness_5", "neighbours kept (trustworthiness, 5 neighbours; 1 best, 0.5 random)", "{:.3f}"),
            ("trustworthiness_12", "neighbours kept (trustworthiness, 12 neighbours)", "{:.3f}"),
            ("knn_accuracy", "label agrees with its {k} nearest map neighbours (kNN accuracy)", "{:.1%}"),
            ("knn_r2", "label value told from its {k} nearest map neighbours (kNN R^2; 1 best, 0 the mean's)",
             "{:.3f}"),
            ("reconstruction_mse", "reconstruction error (mean squared, lower is better)", "{:.4f}"))
CHARTS = (("trustworthiness", "neighbours kept", "{:.3f}", 0.05), ("knn_accuracy", "kNN accuracy", "{:.1%}", 0.05),
          ("final_loss", "final loss", "{:.4g}", None), ("drift", "drift", "{:.3f}", 0.05))
# A label that holds values is measured by kNN R^2 instead of kNN accuracy: its chart takes that one's place.
KNN_R2_CHART = ("knn_r2", "kNN R^2", "{:.3f}", 0.05)
BOUNDED = ("trustworthiness", "knn_accuracy")  # measures that live in [0, 1] (R^2 can fall below 0)


def knn_key(quality: Optional[Quality] = None, nights: Sequence[Night] = ()) -> str:
    """The kNN measure a job's figures carry: "knn_r2" where its label holds values (kNN R^2 was
    measured and no kNN accuracy), else "knn_accuracy"."""
    r2 = (quality is not None and quality.knn_r2 is not None) or any(n.knn_r2 is not None for n in nights)
    accuracy = (quality is not None and quality.knn_accuracy is not None) or any(
        n.knn_accuracy is not None for n in nights)
    return "knn_r2" if r2 and not accuracy else "knn_accuracy"


def quality_table(quality: Optional[Quality], candidate: Optional[Night]) -> Optional[dict[str, Any]]:
    """The rows of a job's quality table: the published map's figures, PCA's beside them, and the
    rejected candidate's where the last attempt was one (its figures are not the published map's)."""
    if quality is None:
        return None
    pca = quality.pca
    candidate_values = {"trustworthiness_5": candidate.trustworthiness, "knn_accuracy": candidate.knn_accuracy,
                        "knn_r2": candidate.knn_r2} if candidate is not None else {}
    k = knn_k(quality.knn)  # the kNN measures' words say the k used: fewer than 10 on small classes
    rows = [{"label": label.format(k=k), "value": _number(getattr(quality, key), form),
             "pca": _number(pca.get(key), form),
             "candidate": _number(candidate_values.get(key), form)}
            for key, label, form in MEASURES if getattr(quality, key) is not None or pca.get(key) is not None]
    return {"rows": rows, "candidate": candidate is not None,
            "sampled": quality.rows if quality.sampled and quality.rows is not None else None}


def _drift_text(drift: Optional[Drift], baseline: Optional[Baseline] = None) -> str:
    new = ""
    if baseline is not None and baseline.new and baseline.reason != "no published run yet":
        new = f"A new baseline: {baseline.reason}. "
    if drift is None:
        return new + "First published night, or continuity off: no drift measured."
    against = drift.against or {}
    if against and not against.get("published"):
        new += (f"Compared with the last {against.get('latent')}-dimensional map "
                f"(run of {against.get('run_started_at')}). ")
    parts = [f"shared rows moved by a median {_number(drift.median_displacement)} of the map's spread"]
    if drift.neighbor_overlap is not None:
        parts.append(f"kept {drift.neighbor_overlap:.0%} of their 10 nearest map neighbours")
    counts = ", ".join(f"{getattr(drift, key):,} {word}" for key, word in (
        ("shared_rows", "shared"), ("added_rows", "added"), ("removed_rows", "removed")))
    return new + "Since the previous published night: " + "; ".join(parts) + (f" ({counts} rows)." if counts else ".")


def axis(values: Sequence[float], least: Optional[float], bounded: bool) -> tuple[float, float]:
    """(low, high) of a sparkline's axis: the values' range, widened about its middle to at least
    `least` (for a loss, 10% of its size), kept within [0, 1] for a bounded measure."""
    low, high = min(values), max(values)
    least = least if least is not None else max(abs(high), abs(low)) * 0.1 or 1.0
    if high - low < least:
        middle = (low + high) / 2
        low, high = middle - least / 2, middle + least / 2
        if bounded and high > 1:
            low, high = low - (high - 1), 1.0
        if bounded and low < 0:
            low, high = 0.0, high - low
    return low, high


def chart(nights: Sequence[Night], key: str, title: str, form: str, least: Optional[float] = None) -> dict[str, Any]:
    """A small line chart of one measure over the last attempts, as the template draws it: one
    place per attempt, a dot where it has a figure (filled: published, hollow red: rejected) and
    a tick on the floor where it has none (red: failed, grey: unchanged, nothing new measured)."""
    width, height, pad = 150, 48, 6
    values = [getattr(n, key) for n in nights]
    known = [v for v in values if v is not None]
    if not known:
        return {"title": title, "empty": True}
    low, high = axis(known, least, key in BOUNDED)
    step = (width - 2 * pad) / max(len(nights) - 1, 1)

    def x(k: int) -> float:
        return round(pad + k * step if len(nights) > 1 else width / 2, 1)

    def y(value: float) -> float:
        return round(height - pad - (value - low) / (high - low) * (height - 2 * pad), 1)

    marks, line = [], []
    for k, (night, value) in enumerate(zip(nights, values)):
        status = night.status.value
        tip = f"{_when(night.time)}: " + (form.format(value) if value is not None else "no figure") + f" ({status})"
        if night.reason and status != "ok":
            tip += f": {' '.join(str(night.reason).split())}"
        if value is None:
            marks.append({"kind": "failed" if status == "failed" else "other", "x": x(k), "y": height - 3, "tip": tip})
            continue
        marks.append({"kind": "rejected" if status == "rejected" else "published", "x": x(k), "y": y(value),
                      "tip": tip})
        if status != "rejected":
            line.append(f"{x(k)},{y(value)}")
    last = form.format(known[-1])
    return {"title": title, "empty": False, "width": width, "height": height, "line": " ".join(line),
            "marks": marks, "last": last, "low": form.format(low), "high": form.format(high),
            "summary": f"last {last}; axis {form.format(low)} to {form.format(high)} over {len(nights)} attempt(s)"}


def notice(view: JobView) -> Optional[dict[str, Any]]:
    """What a job's section says first: unreadable, failed or rejected (and since when its files
    are stale), unchanged; None when there is nothing to say."""
    if view.unreadable:
        return {"kind": "unreadable", "reason": view.unreadable}
    reason = " ".join(str(view.status.reason or "").split()) if view.status else ""
    if view.state in NOT_PUBLISHING:
        since, attempts = stale_since(view) or (None, 1)
        published = (view.status.published_at if view.status else None) or (
            view.manifest.finished_at if view.manifest else None)
        what = "the quality gate rejected the last map" if view.state == "rejected" else "the last attempt failed"
        return {"kind": view.state, "what": what.capitalize(), "reason": reason,
                "published": _when(published) if view.manifest is not None else None,
                "since": since, "attempts": attempts}
    if view.state == "unchanged" and reason:
        return {"kind": "unchanged", "reason": reason}
    return None


def candidate_of(view: JobView) -> Optional[Night]:
    """The rejected candidate of the last attempt, when that is what the last attempt made."""
    if view.state == "rejected" and view.nights and view.nights[-1].status.value == "rejected":
        return view.nights[-1]
    return None


def job_view(view: JobView) -> dict[str, Any]:
    """One job's section of the index, as plain values for the template."""
    manifest = view.manifest
    recent = view.nights[-HISTORY_NIGHTS:]
    charts = []
    measures = [KNN_R2_CHART if key == "knn_accuracy" and knn_key(None, recent) == "knn_r2" else (key, *rest)
                for key, *rest in CHARTS]
    if any(getattr(night, key) is not None for night in recent for key, *_ in measures):
        charts = [chart(recent, *measure) for measure in measures]
    candidate = candidate_of(view)
    counted = {state: sum(1 for n in recent if n.status.value == state) for state in ("ok", "rejected", "failed",
                                                                                         "unchanged")}
    return {
        "name": view.name, "state": view.state, "notice": notice(view), "warnings": warnings_of(manifest),
        "plot": f"{quote(view.name)}/plot.png" if view.has_plot else None, "map_href": view.map_href,
        "dataset": manifest.dataset if manifest else None,
        "attempted": view.status.attempted_at if view.status else None,
        "published": (manifest.finished_at if manifest else None) or (
            view.status.published_at if view.status else None),
        "final_loss": manifest.training.final_loss if manifest else None,
        "quality": quality_table(manifest.quality, candidate) if manifest else None,
        "measured": manifest is not None,
        "drift": _drift_text(manifest.drift, manifest.baseline) if manifest else None,
        "charts": charts, "attempts": len(recent),
        "counted": ", ".join(f"{n} {state}" for state, n in counted.items() if n),
        "links": view.links, "map_problem": view.map_problem,
    }


def overview_row(view: JobView) -> dict[str, Any]:
    """The index's first table: the published map's figures and how many warnings it carries
    (the card says them), and the rejected candidate's figures when the last attempt made one
    (labelled: they are not what readers get)."""
    manifest = view.manifest
    quality = manifest.quality if manifest else None
    candidate = candidate_of(view)

    def beside_pca(key: str, form: str) -> Optional[str]:
        value = getattr(quality, key) if quality is not None else None
        if quality is None or value is None:
            return None
        return f"{form.format(value)} ({_number(quality.pca.get(key), form) or '-'})"

    # kNN accuracy, or kNN R^2 (labelled so: it is no accuracy) where the label holds values
    knn, form, words = ("knn_r2", "{:.3f}", "R^2 ") if knn_key(
        quality, [candidate] if candidate is not None else []) == "knn_r2" else ("knn_accuracy", "{:.1%}", "")
    shown = beside_pca(knn, form)
    candidate_knn = _number(getattr(candidate, knn), form) if candidate is not None else None
    return {"name": view.name, "state": view.state, "warnings": warnings_of(manifest),
            "attempted": _when(view.status.attempted_at if view.status else None),
            "rows": _number(manifest.dataset.rows if manifest else None, "{:,}"),
            "trust": beside_pca("trustworthiness_5", "{:.3f}"), "knn": shown and words + shown,
            "drift": _number(manifest.drift.median_displacement if manifest and manifest.drift else None),
            "candidate": None if candidate is None else {
                "trust": _number(candidate.trustworthiness), "knn": candidate_knn and words + candidate_knn,
                "drift": _number(candidate.drift)}}


def totals(states: Sequence[str]) -> str:
    """'6 jobs: 4 ok, 1 unchanged, 1 failed' (the CLI's last summary line says the same)."""
    order = ["ok", "unchanged", "rejected", "failed", UNREADABLE, "error"]
    counted = {state: states.count(state) for state in dict.fromkeys([*order, *states])}
    parts = ", ".join(f"{n} {state}" for state, n in counted.items() if n)
    return f"{len(states)} job{'' if len(states) == 1 else 's'}" + (f": {parts}" if parts else "")


def index_page(views: Sequence[JobView], built: str) -> str:
    attempts = {t: parsed for t in (v.status.attempted_at for v in views if v.status)
                if t and (parsed := _parse(t)) is not None}
    newest = max(attempts, key=attempts.__getitem__) if attempts else None
    return render("index.html", when=_when, iso=iso, totals=totals([v.state for v in views]), newest=newest,
                  version=__version__, built=built, built_text=built.replace("T", " ").replace("Z", " UTC"),
                  overview=[overview_row(view) for view in views], jobs=[job_view(view) for view in views])
