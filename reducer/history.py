"""`reducer history JOB...`: one line per night from outputs/<job>/history/.

Published runs leave a copy of their manifest (`<stamp>-manifest.json`), rejected candidates
theirs (`<stamp>-rejected-manifest.json`), and attempts that published nothing a status record
(`<stamp>-status.json`); published.read_history reads them as Nights. Nothing here imports
TensorFlow.
"""

from pathlib import Path
from typing import Optional

from reducer.published import Night, read_history


def nights(job_folder: Path | str) -> list[Night]:
    """Every attempt recorded for one job, oldest first; PublishedRecordError when a record
    cannot be read."""
    return read_history(job_folder)


def _number(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def knn_words(night: Night) -> str:
    """'kNN 0.953' (accuracy), or 'kNN R^2 0.929' where the label holds values (R^2 is measured instead)."""
    if night.knn_accuracy is None and night.knn_r2 is not None:
        return f"kNN R^2 {night.knn_r2:.3f}"
    return f"kNN {_number(night.knn_accuracy, 3):>5}"


def stacked_words(night: Night) -> str:
    """'stacked  63%': the share of the map's distinct rows on top of others ('-' where the night's
    record does not say: an older manifest, an attempt that published nothing)."""
    share = "-" if night.stacked_share is None else f"{night.stacked_share:.0%}"
    return f"stacked {share:>4}"


def line(night: Night) -> str:
    """One night: time, status, rows, loss, quality, drift, stacked share, then the reason and
    the night's warnings (as the summary line gives them: '; warning: ...')."""
    rows = "-" if night.rows is None else night.rows
    text = (f"{night.time or '?':<25} {night.status.value:<9} rows {rows:>7}"
            f"  loss {_number(night.final_loss, 6):>9}  trust {_number(night.trustworthiness, 3):>5}"
            f"  {knn_words(night)}  drift {_number(night.drift, 3):>5}  {stacked_words(night)}")
    said = [night.reason] if night.reason else []
    said += [f"warning: {' '.join(warning.split())}" for warning in night.warnings]  # one line each
    return text + (f"  {'; '.join(said)}" if said else "")
