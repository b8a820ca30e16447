"""What running or checking a job gives back: a `JobResult`, and its one summary line."""

from dataclasses import dataclass, field
from typing import Any, Optional

from reducer.gate import worse_than_pca
from reducer.log import utc_stamp  # the one clock: '2026-11-01T02:03:04Z', as the log lines


@dataclass
class JobResult:
    name: str
    # "ok", "unchanged" (nothing to do), "rejected" (missed its quality gate), "failed" (a reason
    # for the user), "error" (a bug: traceback logged); "invalid" from check
    status: str
    seconds: float = 0.0
    final_loss: Optional[float] = None
    reason: str = ""
    manifest: Optional[dict] = None
    note: str = ""  # `reducer check`: the job file and the dataset it uses
    # When the job ended (UTC): the end of each summary line, so a log read the next morning says
    # when each job finished whatever the log's own clock and time zone.
    finished_at: str = field(default_factory=utc_stamp)

    @property
    def succeeded(self) -> bool:
        """ok or unchanged: the run's exit code stays 0."""
        return self.status in ("ok", "unchanged")

    def summary(self) -> str:
        """One line: name, status, seconds, then the final loss, quality and drift, or the reason;
        last, in brackets, the UTC time the job ended."""
        return f"{self._line()} [{self.finished_at}]"

    def _line(self) -> str:
        head = f"{self.name}: {self.status} in {self.seconds:.1f}s"
        manifest = self.manifest or {}
        if self.status == "ok":
            return (f"{head}, final loss {self.final_loss:.6f}{quality_text(manifest.get('quality'))}"
                    f"{drift_text(manifest.get('drift'))}{baseline_text(manifest.get('baseline'))}"
                    f"{pca_warning(manifest.get('quality'))}{fallback_warning(manifest)}{own_warnings(manifest)}")
        if self.status == "unchanged":  # the published map is still the one readers get: so are its warnings
            return f"{head}: {one_line(self.reason)}; published files untouched{own_warnings(manifest)}"
        return f"{head}: {one_line(self.reason)}"


def quality_text(quality: Optional[dict[str, Any]]) -> str:
    """', trustworthiness 0.983, kNN accuracy 0.981' from a manifest's quality section (issue 5)."""
    if not quality or quality.get("trustworthiness_5") is None:
        return ""
    text = f", trustworthiness {quality['trustworthiness_5']:.3f}"
    if quality.get("knn_accuracy") is not None:
        text += f", kNN accuracy {quality['knn_accuracy']:.3f}"
    if quality.get("knn_r2") is not None:
        text += f", kNN R^2 {quality['knn_r2']:.3f}"
    return text


def drift_text(drift: Optional[dict[str, Any]]) -> str:
    """', drift 0.031 of the map's spread (148 rows shared)' from a manifest's drift section."""
    if not drift or drift.get("median_displacement") is None:
        return ""
    return f", drift {drift['median_displacement']:.3f} ({drift['shared_rows']} rows shared)"


def baseline_text(baseline: Optional[dict[str, Any]]) -> str:
    """'; a new baseline: --retrain given' when the map starts one after an earlier published
    map (the first night says nothing: it has no other)."""
    if not baseline or not baseline.get("new") or baseline.get("reason") == "no published run yet":
        return ""
    return f"; a new baseline: {baseline['reason']}"


def pca_warning(quality: Optional[dict[str, Any]]) -> str:
    """A warning, not a failure, when the map is worse than PCA's on both measures."""
    return "; warning: worse than PCA on trustworthiness and kNN accuracy" if worse_than_pca(quality) else ""


def fallback_warning(manifest: Optional[dict[str, Any]]) -> str:
    """'; warning: reconstruction map, not the neighbour map: ...' when the job named no objective
    and the neighbour map did not fit in memory (engine/sizing.py)."""
    fallback = ((manifest or {}).get("training") or {}).get("objective_fallback")
    return f"; warning: {one_line(fallback)}" if fallback else ""


def own_warnings(manifest: Optional[dict[str, Any]]) -> str:
    """'; warning: ...' for each of the manifest's own `warnings` (stacked rows: pipeline.check_stacking)."""
    return "".join(f"; warning: {one_line(w)}" for w in (manifest or {}).get("warnings") or [])


def one_line(text: object) -> str:
    """Messages from libraries (pandas, Keras) sometimes span lines; a summary line must not."""
    return " ".join(str(text).split())
