"""The quality gate: thresholds a job's map must meet to be published ([quality] in the job).

A map that misses one is `rejected`: yesterday's files stay, the candidate is kept for an
operator to look at, and the run exits 1. A threshold that can never be checked (its metric
is off, or needs labels the job does not have) is refused by `check` and `run` alike
(config.gate_cannot_apply), never silently ignored. Nothing here imports TensorFlow.
"""

from typing import Any, Dict, List, Optional

import numpy as np

from reducer import quality as quality_lib
from reducer.config import QualityConfig, gate_cannot_apply


def needs_label_kind(settings: QualityConfig) -> bool:
    """Whether the job sets a threshold that the labels' kind (class or value) can refuse: one
    measured by kNN accuracy, which needs class labels."""
    return settings.min_knn_accuracy is not None or bool(settings.beat_pca)


def cannot_apply_to(settings: QualityConfig, labels: Optional[np.ndarray], column: Optional[str],
                    declared: Optional[str]) -> Optional[str]:
    """gate_cannot_apply once the labels are read: why a threshold can never be checked on these
    labels (the rows the metrics measure: published.sample_rows), or None. `declared`: the job's or
    dataset's label_type (None: the labels tell, quality.label_type). `run` asks on its sample
    before training, `check --data` on the same rows."""
    return gate_cannot_apply(settings, column, quality_lib.label_type(labels, declared))


def misses(settings: QualityConfig, quality: Optional[Dict[str, Any]], drift: Optional[Dict[str, Any]],
           new_baseline: bool = False, published_before: bool = True,
           stacked: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The one-line reason this map misses the job's gate (every threshold missed, with both
    numbers), or None when it passes or the job sets no threshold. `stacked`: the manifest's
    `map` section (quality.stacking), which max_stacked_share holds to.

    max_drift, with drift_gate = "continuing" (the default), holds back only a map that
    continues the published baseline and has a drift figure: a new baseline (the first night,
    `--retrain`, another latent) and a night with no figure (no rows shared with the map it is
    compared with) pass it. With drift_gate = "always" it holds back every map whose figure is
    above it, and a map with no figure at all (but the first night's: `published_before`
    false, there is nothing to drift from)."""
    found: List[str] = []
    quality = quality or {}
    pca = quality.get("pca") or {}

    def below(key: str, minimum: Optional[float], label: str) -> None:
        value = quality.get(key)
        if minimum is not None and value is not None and value < minimum:
            found.append(f"{label} {value:.3f} is below min_{key.replace('_5', '')} = {minimum}")

    below("trustworthiness_5", settings.min_trustworthiness, "trustworthiness")
    below("knn_accuracy", settings.min_knn_accuracy, "kNN accuracy")
    displacement = (drift or {}).get("median_displacement")
    always = settings.drift_gate == "always"
    if settings.max_drift is not None and (always or not new_baseline):
        if displacement is not None and displacement > settings.max_drift:
            found.append(f"drift (median displacement) {displacement:.3f} is above max_drift = {settings.max_drift}")
        elif displacement is None and always and published_before:
            found.append(f"no drift figure (no rows shared with a published map of {'these' if drift else 'any'} "
                         f"dimensions) and drift_gate = \"always\" with max_drift = {settings.max_drift}")
    share = (stacked or {}).get("stacked_share")
    if settings.max_stacked_share is not None and share is not None and share > settings.max_stacked_share:
        found.append(f"{share:.1%} of the distinct rows sit on top of another row in the map, above "
                     f"max_stacked_share = {settings.max_stacked_share}")
    if settings.beat_pca and worse_than_pca(quality):
        found.append(f"the map is worse than PCA's on both trustworthiness ({quality['trustworthiness_5']:.3f} < "
                     f"{pca['trustworthiness_5']:.3f}) and kNN accuracy ({quality['knn_accuracy']:.3f} < "
                     f"{pca['knn_accuracy']:.3f}) and beat_pca = true")
    return "; ".join(found) or None


def worse_than_pca(quality: Optional[Dict[str, Any]]) -> bool:
    """True when the map is worse than PCA's on both trustworthiness and kNN accuracy."""
    pca = (quality or {}).get("pca") or {}
    pairs = [(quality.get(k), pca.get(k)) for k in ("trustworthiness_5", "knn_accuracy")] if quality else []
    return bool(pairs) and all(a is not None and b is not None and a < b for a, b in pairs)
