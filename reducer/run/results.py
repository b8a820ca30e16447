"""What running or checking a job gives back: a `JobResult`, and its one summary line."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class JobResult:
    name: str
    status: str  # "ok", "failed" (a user-facing reason), "error" (a bug: traceback logged); "invalid" from check
    seconds: float = 0.0
    final_loss: Optional[float] = None
    reason: str = ""
    manifest: Optional[dict] = None
    note: str = ""  # `reducer check`: the job file and the dataset it uses

    def summary(self):
        """One line: name, status, seconds, then the final loss or the reason it failed."""
        head = f"{self.name}: {self.status} in {self.seconds:.1f}s"
        if self.status == "ok":
            quality = quality_text((self.manifest or {}).get("quality"))
            return f"{head}, final loss {self.final_loss:.6f}{quality}"
        return f"{head}: {one_line(self.reason)}"


def quality_text(quality):
    """', trustworthiness 0.983, kNN accuracy 0.981' from a manifest's quality section (issue 5)."""
    if not quality or quality.get("trustworthiness_5") is None:
        return ""
    text = f", trustworthiness {quality['trustworthiness_5']:.3f}"
    if quality.get("knn_accuracy") is not None:
        text += f", kNN accuracy {quality['knn_accuracy']:.3f}"
    return text


def one_line(text):
    """Messages from libraries (pandas, Keras) sometimes span lines; a summary line must not."""
    return " ".join(str(text).split())
