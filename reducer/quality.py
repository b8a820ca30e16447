"""How faithful a map is: the numbers every run records in its manifest's `quality` section.

- trustworthiness at k=5 and k=12 (scikit-learn's arithmetic, InputRanks): 1.0 when no point's map neighbours are
  strangers in the input; it falls as the map invents neighbourhoods the data does not have.
- kNN accuracy: how often a point's label is the majority label of its 10 nearest map
  neighbours, in stratified 10-fold cross-validation with a fixed seed (labelled data only);
  fewer neighbours where the classes are too small for 10 to vote right (knn_neighbours).
  For labels that are values, not classes (a measurement, a rounded value with many levels),
  a class majority means nothing: kNN R^2 instead, the coefficient of determination of a
  10-nearest-neighbour regression of the value on the map, in 10-fold cross-validation.
- reconstruction MSE: how much of the (normalised) input the decoder rebuilds from the map.
- the same numbers for PCA to the same number of dimensions, as a baseline.

Metrics cost O(rows^2) memory and time, so on large data they run on a fixed-seed sample of
`max_rows` rows (the manifest says how many). Only numpy and scikit-learn here: no TensorFlow.
"""

import warnings
from typing import Any, Callable, Dict, Optional, Tuple, TypeGuard, Union

import numpy as np

from reducer import published

TRUSTWORTHINESS_K = (5, 12)
KNN_K = 10
KNN_FOLDS = 10
SEED = published.SAMPLE_SEED  # fixed, not the job's seed: metrics of runs with different seeds stay comparable
MAX_ROWS = 4000
MAX_CLASSES = 10  # a numeric label with more distinct values than this is a value, not a class
LABEL_TYPES = ("class", "value")
# the map's extent (its largest coordinate range). Rows are distinct when they differ in the table
# by more than STACKED_SAME x the distance to the row's STACKED_LOCAL_K-th nearest other distinct row
# (a scale of its own neighbourhood, which a far blob or a few extreme rows do not set) and by
# more than STACKED_RESOLUTION x the table's extent (float32 cannot tell nearer rows apart);
# exact duplicates are measured once: twins may share a point, and a row's twin is not the
# neighbour it is judged by. A map with STACKED_SHARE of its distinct rows so is flagged: groups of
# distinct rows show as single dots; so is a class (a class label, at least STACKED_GROUP_ROWS
# distinct rows) with STACKED_GROUP_SHARE of its distinct rows so, whatever its share of the table.
# Measured on at most STACKED_ROWS rows (fixed seed).
# STACKED_DISTANCE holds for up to STACKED_SPARSE_ROWS measured rows; n rows more sit closer
# together in any map (as 1 / sqrt(n) in two dimensions), so the map's distance shrinks by
# sqrt(STACKED_SPARSE_ROWS / n): with 0.1% at 2,000 rows, ten well-drawn groups of a million-row
# table, each a blob 5% of the map wide, were flagged as stacked (benchmarks/README.md).
STACKED_DISTANCE = 1e-3
STACKED_SPARSE_ROWS = 200
STACKED_SHARE = 0.25
STACKED_ROWS = 2000
STACKED_SAME = 1e-3
STACKED_LOCAL_K = 10
STACKED_RESOLUTION = 1e-6
STACKED_GROUP_SHARE = 0.5
STACKED_GROUP_ROWS = 5
STACKED_MAP_NEIGHBOURS = 32


def label_type(labels: Optional[np.ndarray], declared: Optional[str] = None) -> Optional[str]:
    """"class" or "value" (None without labels): as declared, else "value" for a numeric label
    with more than MAX_CLASSES distinct values."""
    if labels is None:
        return None
    if declared is not None:
        return declared
    try:
        values = np.asarray(labels).astype(np.float64)
    except (TypeError, ValueError):
        return "class"
    return "value" if len(np.unique(values)) > MAX_CLASSES else "class"


def knn_r2(coordinates: np.ndarray, values: Any, k: int = KNN_K, folds: int = KNN_FOLDS,
           seed: int = SEED) -> Tuple[float, Dict[str, int]]:
    """Mean R^2 of a k-nearest-neighbour regression of the label value on the coordinates,
    k-fold with a fixed seed: (score, details)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsRegressor

    values = np.asarray(values).astype(np.float64)
    splits = min(folds, len(values))
    details = {"k": min(k, len(values) - int(np.ceil(len(values) / splits))), "folds": splits,
               "rows": int(len(values))}
    scores = cross_val_score(KNeighborsRegressor(n_neighbors=details["k"]), coordinates, values, scoring="r2",
                             cv=KFold(n_splits=splits, shuffle=True, random_state=seed))
    return float(np.mean(scores)), details


class InputRanks:
    """For every row of the input, the rank (1 = nearest) of every other row by distance.

    The expensive half of trustworthiness, and it depends on the input only: computed once per
    run and shared by every map and every k (scikit-learn's `trustworthiness` redoes it on each
    of the run's four calls). The arithmetic is scikit-learn's, step by step, so the numbers are
    the same to the last bit (tests/test_quality.py compares them).
    """

    def __init__(self, x: np.ndarray) -> None:
        from sklearn.metrics import pairwise_distances

        distances = pairwise_distances(x)  # euclidean, as scikit-learn's trustworthiness
        np.fill_diagonal(distances, np.inf)  # a row is not its own neighbour
        order = np.argsort(distances, axis=1)
        del distances
        rows = len(x)
        self.ranks = np.zeros((rows, rows), dtype=np.int32)  # int32: half the memory, same values
        self.ranks[np.arange(rows)[:, None], order] = np.arange(1, rows + 1, dtype=np.int32)

    def trustworthiness(self, coordinates: np.ndarray, k: int) -> Optional[float]:
        """1.0 when no row's k nearest map neighbours are strangers in the input; k is capped
        where the rows are too few for it (scikit-learn requires k < rows / 2)."""
        from sklearn.neighbors import NearestNeighbors

        rows = len(self.ranks)
        k = min(k, (rows - 1) // 2)
        if k < 1:
            return None
        nearest = NearestNeighbors(n_neighbors=k).fit(coordinates).kneighbors(return_distance=False)
        excess = self.ranks[np.arange(rows)[:, None], nearest].astype(np.int64) - k
        penalty = np.sum(excess[excess > 0])
        return float(1.0 - penalty * (2.0 / (rows * k * (2.0 * rows - 3.0 * k - 1.0))))


def knn_accuracy(coordinates: np.ndarray, labels: Any, k: int = KNN_K, folds: int = KNN_FOLDS,
                 seed: int = SEED) -> Tuple[Optional[float], Dict[str, Any]]:
    """Mean accuracy of a k-nearest-neighbour classifier on the coordinates, stratified k-fold.

    Returns (accuracy or None, details). Classes with a single member cannot be predicted from
    the others, so they are left out (and counted); a class with fewer members than folds is
    fine: it simply is missing from some test folds. None when fewer than two classes remain.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    classes, codes, counts = np.unique(np.asarray(labels).astype(str), return_inverse=True,
                                       return_counts=True)
    kept = counts[codes] >= 2
    details: Dict[str, Any] = {"k": k, "rows": int(kept.sum()), "classes": int((counts >= 2).sum()),
                               "rows_left_out": int((~kept).sum())}  # k: the one used, fewer on tiny data
    if details["classes"] < 2:
        details["reason"] = "fewer than two classes with at least two rows"
        return None, details
    codes, coordinates = codes[kept], coordinates[kept]
    splits = min(folds, int(counts[counts >= 2].max()))
    details["k"] = knn_neighbours(counts[counts >= 2], splits, k)
    classifier = KNeighborsClassifier(n_neighbors=details["k"])
    details["folds"] = splits
    with warnings.catch_warnings():
        # "The least populated class has only N members": expected, and handled above.
        warnings.filterwarnings("ignore", message=".*least populated class.*", category=UserWarning)
        scores = cross_val_score(classifier, coordinates, codes,
                                 cv=StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed))
    return float(np.mean(scores)), details


def knn_neighbours(class_rows: np.ndarray, splits: int, k: int = KNN_K) -> int:
    """The k of kNN accuracy: at most `k`, and at most the median class's rows in a training
    fold minus one, so that a point of a typical class can find a majority of its own among its
    k nearest (with k = 10, three perfectly separated classes of 5 rows score 0.333: the 4 rows
    of its own class in a training fold are outvoted by the other 6). At least 1."""
    median_train = int(np.floor(float(np.median(class_rows)) * (splits - 1) / splits))
    return int(max(1, min(k, median_train - 1)))


def knn_k(knn: Optional[Dict[str, Any]]) -> int:
    """The k a manifest's `knn` details record (KNN_K for manifests written before they did)."""
    return int((knn or {}).get("k") or KNN_K)


def pca(x: np.ndarray, dims: int) -> Tuple[np.ndarray, float]:
    """(coordinates, reconstruction MSE) of PCA to `dims` dimensions; deterministic."""
    from sklearn.decomposition import PCA

    dims = min(dims, *x.shape)
    model = PCA(n_components=dims, svd_solver="full")
    coordinates = model.fit_transform(x.astype(np.float64))
    rebuilt = model.inverse_transform(coordinates)
    return coordinates, float(np.mean((rebuilt - x) ** 2))


class Reference:
    """Everything the metrics need that does not depend on the map: the fixed-seed sample, the
    input's neighbour ranks and PCA's numbers. The costly part (pipeline.py builds it in a
    background thread while the model trains); `evaluate` then scores the map in a moment."""

    def __init__(self, x: np.ndarray, labels: Optional[np.ndarray] = None, dims: int = 2, max_rows: int = MAX_ROWS,
                 seed: int = SEED, kind: Optional[str] = None) -> None:
        x = np.asarray(x)
        self.label_type = label_type(labels, kind)
        self.total_rows = len(x)
        self.seed = seed
        self.chosen = published.sample_rows(len(x), max_rows, seed)
        self.x = x[self.chosen].astype(np.float64)
        self.labels = None if labels is None else np.asarray(labels)[self.chosen]
        self.input_ranks = InputRanks(self.x)
        pca_coordinates, pca_mse = pca(self.x, dims)
        self.pca = {**self.scores(pca_coordinates), "reconstruction_mse": pca_mse}

    def trustworthiness(self, coordinates: np.ndarray) -> Dict[str, Any]:
        """{"trustworthiness_K": value} for each K of TRUSTWORTHINESS_K."""
        return {f"trustworthiness_{k}": self.input_ranks.trustworthiness(coordinates, k) for k in TRUSTWORTHINESS_K}

    def scores(self, coordinates: np.ndarray) -> Dict[str, Any]:
        """trustworthiness at each k and kNN accuracy (None without labels) of one map of the sample."""
        result = self.trustworthiness(coordinates)
        result["knn_accuracy"] = (knn_accuracy(coordinates, self.labels)[0] if self.label_type == "class"
                                  else None)
        if self.label_type == "value":
            result["knn_r2"] = knn_r2(coordinates, self.labels)[0]
        return result

    def evaluate(self, coordinates: np.ndarray,
                 reconstruction: Union[np.ndarray, Callable[[np.ndarray], np.ndarray], None] = None) -> Dict[str, Any]:
        """The manifest's `quality` section for the map `coordinates` of every row.

        reconstruction: the decoder's output for every row; or a function that returns it for
        the row indices it is given (called with the sample's only); or None when there is none.
        """
        cs = np.asarray(coordinates)[self.chosen].astype(np.float64)
        result = {"rows": int(len(self.chosen)), "sampled": bool(len(self.chosen) < self.total_rows),
                  "sample_seed": self.seed, "trustworthiness_k": list(TRUSTWORTHINESS_K)}
        result.update(self.trustworthiness(cs))
        result["label_type"] = self.label_type
        if self.label_type == "class":
            result["knn_accuracy"], result["knn"] = knn_accuracy(cs, self.labels)
        else:
            result["knn_accuracy"] = None
        if self.label_type == "value":
            result["knn_r2"], result["knn"] = knn_r2(cs, self.labels)
        if callable(reconstruction):
            reconstruction = reconstruction(self.chosen)
        elif reconstruction is not None:
            reconstruction = np.asarray(reconstruction)[self.chosen]
        result["reconstruction_mse"] = (None if reconstruction is None
                                        else float(np.mean((np.asarray(reconstruction, np.float64) - self.x) ** 2)))
        result["pca"] = dict(self.pca)
        return result


def evaluate(x: np.ndarray, coordinates: np.ndarray, labels: Optional[np.ndarray] = None,
             reconstruction: Union[np.ndarray, Callable[[np.ndarray], np.ndarray], None] = None,
             max_rows: int = MAX_ROWS, seed: int = SEED, kind: Optional[str] = None) -> Dict[str, Any]:
    """The manifest's `quality` section for a map of the normalised rows `x` (see Reference).
    Everything, PCA's fit included, is computed on the same fixed-seed sample."""
    return Reference(x, labels, np.shape(coordinates)[1], max_rows, seed, kind).evaluate(coordinates, reconstruction)


def _extent(points: np.ndarray) -> float:
    return float(np.ptp(points, axis=0).max()) if len(points) > 1 else 0.0


def _nearest_distinct(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of the (distinct) `rows`, the map distance (`points`) to its nearest row that
    differs from it in the table (see STACKED_SAME); inf for a row no other row differs from."""
    from sklearn.neighbors import NearestNeighbors

    count = len(rows)
    local = NearestNeighbors(n_neighbors=min(STACKED_LOCAL_K, count - 1) + 1).fit(rows).kneighbors(rows)[0][:, -1]
    same = np.maximum(STACKED_SAME * local, STACKED_RESOLUTION * _extent(rows))
    candidates = min(STACKED_MAP_NEIGHBOURS, count - 1) + 1
    in_map, order = NearestNeighbors(n_neighbors=candidates).fit(points).kneighbors(points)
    # One neighbour column at a time: rows x candidates x columns would not fit for wide tables.
    distinct = np.stack([np.linalg.norm(rows[order[:, j]] - rows, axis=1) > same for j in range(candidates)], axis=1)
    distinct &= order != np.arange(count)[:, None]  # (a point's twin in the map may come before it)
    found = distinct.any(axis=1)
    nearest = np.where(found, in_map[np.arange(count), distinct.argmax(axis=1)], np.inf)
    for i in np.flatnonzero(~found):  # more near-identical rows than candidates: look at every row
        others = np.linalg.norm(rows - rows[i], axis=1) > same[i]
        if others.any():
            nearest[i] = float(np.linalg.norm(points[others] - points[i], axis=1).min())
    return nearest


def stacking(coordinates: np.ndarray, x: np.ndarray, labels: Optional[np.ndarray] = None,
             label_kind: Optional[str] = None, max_rows: int = STACKED_ROWS, seed: int = SEED) -> dict[str, Any]:
    """How much of the map sits on top of itself: {"rows", "distinct_rows", "stacked_share",
    "stacked_distance", "median_nearest", "max_abs"}, and "stacked_groups" with class labels.

    Exact duplicates in the table (`x`, the normalised rows) count once. stacked_share: the share
    of the distinct rows whose nearest row that differs from it in the table (STACKED_SAME, with
    a scale of the row's own neighbourhood) is within stacked_distance x the map's extent in the
    map (stacked_distance_for: STACKED_DISTANCE, less when more rows are measured);
    median_nearest: the median of that distance over the map's extent; max_abs: the largest
    |coordinate|; stacked_groups: the classes of `labels` (when they are classes: label_type)
    with at least STACKED_GROUP_ROWS distinct rows of which STACKED_GROUP_SHARE or more are
    stacked, as [{"label", "rows" (distinct), "stacked_share"}], most stacked first. On a
    fixed-seed sample of at most `max_rows` rows."""
    coordinates = np.asarray(coordinates, dtype=np.float64)
    chosen = published.sample_rows(len(coordinates), max_rows, seed)
    points, rows = coordinates[chosen], np.asarray(x, dtype=np.float64)[chosen]
    first = np.unique(rows, axis=0, return_index=True)[1] if len(rows) else np.zeros(0, dtype=int)
    first = np.sort(first)
    points, rows = points[first], rows[first]
    classes = None
    if labels is not None and label_type(labels, label_kind) == "class":
        classes = np.asarray(labels).astype(str)[chosen][first]
    near = stacked_distance_for(len(first))
    result: dict[str, Any] = {
        "rows": int(len(chosen)), "distinct_rows": int(len(first)), "stacked_share": 0.0, "stacked_distance": near,
        "median_nearest": None, "max_abs": float(np.abs(coordinates).max()) if coordinates.size else 0.0}
    if classes is not None:
        result["stacked_groups"] = []
    extent = _extent(points)
    if len(first) < 2 or extent <= 0:
        return result
    nearest = _nearest_distinct(points, rows)
    stacked = nearest <= near * extent
    result["stacked_share"] = float(stacked.mean())
    if np.isfinite(nearest).any():
        result["median_nearest"] = float(np.median(nearest[np.isfinite(nearest)]) / extent)
    if classes is not None:
        names, codes, counts = np.unique(classes, return_inverse=True, return_counts=True)
        shares = np.bincount(codes.reshape(-1), weights=stacked, minlength=len(names)) / counts
        flagged = [{"label": str(names[c]), "rows": int(counts[c]), "stacked_share": float(shares[c])}
                   for c in range(len(names)) if counts[c] >= STACKED_GROUP_ROWS and shares[c] >= STACKED_GROUP_SHARE]
        result["stacked_groups"] = sorted(flagged, key=lambda g: (-g["stacked_share"], -g["rows"], g["label"]))
    return result


def stacked_distance_for(rows: int) -> float:
    """How near (a share of the map's extent) a row's nearest other row must be to count as on
    top of it, when `rows` rows are measured: STACKED_DISTANCE for up to STACKED_SPARSE_ROWS rows,
    then less as 1 / sqrt(rows), as the spacing of any map's points does."""
    return STACKED_DISTANCE * min(1.0, float(np.sqrt(STACKED_SPARSE_ROWS / max(rows, 1))))


def stacking_flagged(section: Optional[dict[str, Any]]) -> TypeGuard[dict[str, Any]]:
    """Whether a `stacking` section earns the stacked-rows warning: STACKED_SHARE of the distinct
    rows on top of others, or a class most of whose rows are. The manifest's warning, plot.png's
    line and `reducer history` all ask here."""
    if not section:
        return False
    return bool(section.get("stacked_share", 0.0) >= STACKED_SHARE or section.get("stacked_groups"))


def group_list(groups: list[dict[str, Any]], name: Callable[[dict[str, Any]], str]) -> str:
    """The first three stacked groups, each as `name` gives it, and how many more."""
    return ", ".join(name(g) for g in groups[:3]) + (f" and {len(groups) - 3} more" if len(groups) > 3 else "")


def stacking_headline(section: Optional[dict[str, Any]], label_characters: int = 20) -> Optional[str]:
    """The stacked-rows warning in one short line for plot.png (None when there is none, as for
    stacking_warning): 'warning: 63% of the distinct rows sit on top of others (most of group
    'g2')'. Group names are cut to `label_characters`."""
    if not stacking_flagged(section):
        return None
    share, groups = section.get("stacked_share", 0.0), section.get("stacked_groups") or []

    def short(label: Any) -> str:
        text = str(label)
        return repr(text if len(text) <= label_characters else text[:label_characters - 3] + "...")

    named = group_list(groups, lambda g: short(g["label"]))
    plural = "s" if len(groups) > 1 else ""
    if share >= STACKED_SHARE:
        return (f"warning: {share:.0%} of the distinct rows sit on top of others"
                + (f" (most of group{plural} {named})" if groups else "") + ": groups may show as single points")
    return f"warning: most distinct rows of group{plural} {named} sit on top of one another"


def stacking_warning(section: Optional[dict[str, Any]]) -> Optional[str]:
    """The warning a `stacking` section earns, or None: 'N% of the distinct rows sit on top of
    others ...' when STACKED_SHARE of them do, and the classes most of whose rows do, named."""
    if not stacking_flagged(section):
        return None
    share, groups = section.get("stacked_share", 0.0), section.get("stacked_groups") or []
    where = f"(within {section.get('stacked_distance', STACKED_DISTANCE) * 100:.2g}% of its extent)"
    if share >= STACKED_SHARE:
        text = (f"{share:.0%} of the distinct rows sit on top of another row in the map {where} though they differ "
                f"in the table: groups may show as single points")
        named = group_list(groups, lambda g: f"'{g['label']}'")
        return text + (f"; most rows of group{'s' if len(groups) > 1 else ''} {named} do" if groups else "")
    named = group_list(groups, lambda g: f"'{g['label']}' ({g['rows']} rows, {g['stacked_share']:.0%} stacked)")
    if len(groups) == 1:
        return (f"group {named} may show as a single point: its distinct rows sit on top of one another in the "
                f"map {where} though they differ in the table")
    return (f"groups {named} may show as single points: their distinct rows sit on top of one another in the "
            f"map {where} though they differ in the table")


def subtitle(quality: Dict[str, Any]) -> str:
    """One plot subtitle line: this map's numbers next to PCA's."""
    def number(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    pca_ = quality["pca"]
    text = (f"trustworthiness@5 {number(quality['trustworthiness_5'])} "
            f"(PCA {number(pca_['trustworthiness_5'])})")
    if quality.get("knn_accuracy") is not None:
        text += (f"   kNN accuracy {number(quality['knn_accuracy'])} "
                 f"(PCA {number(pca_['knn_accuracy'])})")
    if quality.get("knn_r2") is not None:
        text += f"   kNN R^2 {number(quality['knn_r2'])} (PCA {number(pca_.get('knn_r2'))})"
    return text
