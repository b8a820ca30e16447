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


def line(night: Night) -> str:
    rows = "-" if night.rows is None else night.rows
    text = (f"{night.time or '?':<25} {night.status.value:<9} rows {rows:>7}"
            f"  loss {_number(night.final_loss, 6):>9}  trust {_number(night.trustworthiness, 3):>5}"
            f"  kNN {_number(night.knn_accuracy, 3):>5}  drift {_number(night.drift, 3):>5}")
    return text + (f"  {night.reason}" if night.reason else "")
