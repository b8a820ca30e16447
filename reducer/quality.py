"""How faithful a map is: the numbers every run records in its manifest's `quality` section.

- trustworthiness at k=5 and k=12 (scikit-learn's): 1.0 when no point's map neighbours are
  strangers in the input; it falls as the map invents neighbourhoods the data does not have.
- kNN accuracy: how often a point's label is the majority label of its 10 nearest map
  neighbours, in stratified 10-fold cross-validation with a fixed seed (labelled data only).
- reconstruction MSE: how much of the (normalised) input the decoder rebuilds from the map.
- the same numbers for PCA to the same number of dimensions, as a baseline.

Metrics cost O(rows^2) memory and time, so on large data they run on a fixed-seed sample of
`max_rows` rows (the manifest says how many). Only numpy and scikit-learn here: no TensorFlow.
"""

import warnings

import numpy as np

TRUSTWORTHINESS_K = (5, 12)
KNN_K = 10
KNN_FOLDS = 10
SEED = 0  # fixed, not the job's seed: metrics of runs with different seeds stay comparable
MAX_ROWS = 4000


def trustworthiness(x, coordinates, k):
    """scikit-learn's trustworthiness, with k capped where the data are too few for it."""
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    rows = len(x)
    k = min(k, (rows - 1) // 2)  # scikit-learn requires k < rows / 2
    if k < 1:
        return None
    return float(sklearn_trustworthiness(x, coordinates, n_neighbors=k))


def knn_accuracy(coordinates, labels, k=KNN_K, folds=KNN_FOLDS, seed=SEED):
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
    details = {"k": k, "rows": int(kept.sum()), "classes": int((counts >= 2).sum()),
               "rows_left_out": int((~kept).sum())}  # k: the one used, fewer on tiny data
    if details["classes"] < 2:
        details["reason"] = "fewer than two classes with at least two rows"
        return None, details
    codes, coordinates = codes[kept], coordinates[kept]
    splits = min(folds, int(counts[counts >= 2].max()))
    smallest_train = len(codes) - int(np.ceil(len(codes) / splits))
    details["k"] = min(k, smallest_train)
    classifier = KNeighborsClassifier(n_neighbors=details["k"])
    details["folds"] = splits
    with warnings.catch_warnings():
        # "The least populated class has only N members": expected, and handled above.
        warnings.filterwarnings("ignore", message=".*least populated class.*", category=UserWarning)
        scores = cross_val_score(classifier, coordinates, codes,
                                 cv=StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed))
    return float(np.mean(scores)), details


def pca(x, dims):
    """(coordinates, reconstruction MSE) of PCA to `dims` dimensions; deterministic."""
    from sklearn.decomposition import PCA

    dims = min(dims, *x.shape)
    model = PCA(n_components=dims, svd_solver="full")
    coordinates = model.fit_transform(x.astype(np.float64))
    rebuilt = model.inverse_transform(coordinates)
    return coordinates, float(np.mean((rebuilt - x) ** 2))


def sample_rows(rows, max_rows, seed=SEED):
    """Sorted indices of a fixed-seed sample of at most `max_rows` rows (all rows when fewer)."""
    if rows <= max_rows:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))


def scores(x, coordinates, labels=None):
    """trustworthiness at each k and kNN accuracy (None without labels) of one map."""
    result = {f"trustworthiness_{k}": trustworthiness(x, coordinates, k) for k in TRUSTWORTHINESS_K}
    result["knn_accuracy"] = None if labels is None else knn_accuracy(coordinates, labels)[0]
    return result


def evaluate(x, coordinates, labels=None, reconstruction=None, max_rows=MAX_ROWS, seed=SEED):
    """The manifest's `quality` section for a map of the normalised rows `x`.

    reconstruction: the decoder's output for every row of `x`; or a function that returns it
    for the row indices it is given (called with the sample's only); or None when there is none.
    Everything, PCA's fit included, is computed on the same fixed-seed sample.
    """
    x = np.asarray(x)
    chosen = sample_rows(len(x), max_rows, seed)
    xs = x[chosen].astype(np.float64)
    cs = np.asarray(coordinates)[chosen].astype(np.float64)
    ls = None if labels is None else np.asarray(labels)[chosen]
    result = {"rows": int(len(chosen)), "sampled": bool(len(chosen) < len(x)), "sample_seed": seed,
              "trustworthiness_k": list(TRUSTWORTHINESS_K)}
    result.update(scores(xs, cs, None))
    if ls is not None:
        result["knn_accuracy"], result["knn"] = knn_accuracy(cs, ls)
    else:
        result["knn_accuracy"] = None
    if callable(reconstruction):
        reconstruction = reconstruction(chosen)
    elif reconstruction is not None:
        reconstruction = np.asarray(reconstruction)[chosen]
    result["reconstruction_mse"] = (None if reconstruction is None
                                    else float(np.mean((np.asarray(reconstruction, np.float64) - xs) ** 2)))
    pca_coordinates, pca_mse = pca(xs, cs.shape[1])
    result["pca"] = {**scores(xs, pca_coordinates, ls), "reconstruction_mse": pca_mse}
    return result


def subtitle(quality):
    """One plot subtitle line: this map's numbers next to PCA's."""
    def number(value):
        return "n/a" if value is None else f"{value:.3f}"

    pca_ = quality["pca"]
    text = (f"trustworthiness@5 {number(quality['trustworthiness_5'])} "
            f"(PCA {number(pca_['trustworthiness_5'])})")
    if quality.get("knn_accuracy") is not None:
        text += (f"   kNN accuracy {number(quality['knn_accuracy'])} "
                 f"(PCA {number(pca_['knn_accuracy'])})")
    return text
