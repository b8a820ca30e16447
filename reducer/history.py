"""`reducer history JOB...`: one line per night from outputs/<job>/history/.

Published runs leave a copy of their manifest (`<stamp>-manifest.json`), rejected candidates
theirs (`<stamp>-rejected-manifest.json`), and attempts that published nothing a status record
(`<stamp>-status.json`). Nothing here imports TensorFlow.
"""

import json
from pathlib import Path


def _read(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def nights(job_folder):
    """Every attempt recorded for one job, oldest first, as plain dicts."""
    folder = Path(job_folder) / "history"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = _read(path)
        if record is None:
            continue
        if path.name.endswith("-status.json"):
            found.append({"time": record.get("attempted_at"), "status": record.get("status"),
                          "reason": record.get("reason"), "rows": None, "final_loss": None,
                          "trustworthiness": None, "knn_accuracy": None, "drift": None})
            continue
        quality, drift = record.get("quality") or {}, record.get("drift") or {}
        found.append({
            "time": (record.get("run") or {}).get("started_at") or path.name.split("-")[0],
            "status": "rejected" if path.name.endswith("-rejected-manifest.json") else "ok",
            "reason": record.get("rejected"),
            "rows": (record.get("dataset") or {}).get("rows"),
            "final_loss": (record.get("training") or {}).get("final_loss"),
            "trustworthiness": quality.get("trustworthiness_5"),
            "knn_accuracy": quality.get("knn_accuracy"),
            "drift": drift.get("median_displacement"),
        })
    return found


def _number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def line(night):
    rows = "-" if night["rows"] is None else night["rows"]
    text = (f"{night['time'] or '?':<25} {night['status']:<9} rows {rows:>7}"
            f"  loss {_number(night['final_loss'], 6):>9}  trust {_number(night['trustworthiness'], 3):>5}"
            f"  kNN {_number(night['knn_accuracy'], 3):>5}  drift {_number(night['drift'], 3):>5}")
    return text + (f"  {night['reason']}" if night["reason"] else "")
