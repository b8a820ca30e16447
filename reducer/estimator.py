"""reducer.Map: the scikit-learn face of a job, for notebooks and pipelines.

    >>> from reducer import Map
    >>> coordinates = Map(epochs=50).fit_transform(frame)

Its parameters are a job file's [model], [training] and [quality] keys, with the same defaults:
one left as None is what a job that leaves the key out gets (the neighbour objective's settings
sized from the table, defaults.neighbor_settings). `fit` builds the job (config.job_from_tables),
reads the rows through the same checks as a job's table (tables.make_table) and trains through
run/pipeline.fit, the training step of `reducer run`: one mechanism, not a second pipeline.
TensorFlow is imported on the first `fit`, not on `import reducer`.
"""

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from reducer import __version__

# The keys of a job file each parameter stands for: parameter -> (section, key).
SETTINGS = {
    "objective": ("model", "objective"), "latent": ("model", "latent"), "hidden": ("model", "hidden"),
    "activation": ("model", "activation"), "output_activation": ("model", "output_activation"),
    "latent_activation": ("model", "latent_activation"), "n_neighbors": ("model", "n_neighbors"),
    "min_dist": ("model", "min_dist"), "reconstruction_weight": ("model", "reconstruction_weight"),
    "epochs": ("training", "epochs"), "batch_size": ("training", "batch_size"),
    "learning_rate": ("training", "learning_rate"), "seed": ("training", "seed"),
    "negative_samples": ("training", "negative_samples"), "log_every": ("training", "log_every"),
    "quality": ("quality", "enabled"), "quality_max_rows": ("quality", "max_rows"),
    "robust_input": ("model", "robust_input"),
}
WHERE = Path("reducer.Map")  # what messages about a parameter start with, where a job names its file
LABEL = "label"  # the column name the table gives `y`, when fit is given one


class MapWarning(UserWarning):
    """What `fit` warns of, as a job's summary line would (rows stacked on top of each other):
    filter it by this class, or read `warnings_`."""


class Map(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A map of a table's rows: `fit(X[, y])`, `transform(X)`, `fit_transform(X[, y])`.

    X: an array or a DataFrame of numbers (rows x columns); a DataFrame's column names become
    the saved model's feature names. y (optional): one label per row, as a job's `label` column:
    the quality figures then include kNN accuracy (classes) or kNN R^2 (values).

    After fit: `encoder_` (the Keras model that takes raw rows, normalisation inside, as
    Models/<job>.keras), `embedding_` (the coordinates of X), `quality_` (the manifest's quality
    section as a dict, or None with quality=False), `loss_per_epoch_`, `settings_` (every
    setting as the job's manifest records it, sizing filled in), `map_` (the manifest's `map`
    section: how many distinct rows sit on top of others), `warnings_` (the manifest's
    `warnings`, each also raised as a MapWarning), `n_features_in_` and, for a DataFrame,
    `feature_names_in_`. `save(path)` writes the .keras, .onnx and .json a job writes
    to Models/, so `reducer encode` and `reducer.Encoder` read it.
    """

    def __init__(self, objective: str = "neighbors", latent: int = 2, hidden: Optional[List[int]] = None,
                 activation: Optional[str] = None, output_activation: Optional[str] = None,
                 latent_activation: Optional[str] = None, n_neighbors: Optional[int] = None,
                 min_dist: Optional[float] = None, reconstruction_weight: Optional[float] = None,
                 epochs: Optional[int] = None, batch_size: Optional[int] = None,
                 learning_rate: Optional[float] = None, seed: int = 1, negative_samples: Optional[int] = None,
                 normalize: Optional[str] = None, quality: bool = True, quality_max_rows: int = 4000,
                 log_every: int = 100, name: str = "map", robust_input: Optional[bool] = None) -> None:
        self.objective = objective
        self.latent = latent
        self.hidden = hidden
        self.activation = activation
        self.output_activation = output_activation
        self.latent_activation = latent_activation
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.reconstruction_weight = reconstruction_weight
        self.robust_input = robust_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.negative_samples = negative_samples
        self.normalize = normalize
        self.quality = quality
        self.quality_max_rows = quality_max_rows
        self.log_every = log_every
        self.name = name

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # coordinates are float32, as the saved encoder gives
        tags.non_deterministic = False  # same seed, same numbers
        return tags

    def _job(self, features: List[str], with_label: bool) -> Any:
        """The job these parameters make, checked as a job file's tables are, against the
        in-memory dataset of `features` (and the label column)."""
        from reducer.config import job_for_dataset, job_from_tables

        tables: Dict[str, Dict[str, Any]] = {"model": {}, "training": {}, "quality": {}}
        for parameter, (section, key) in SETTINGS.items():
            value = getattr(self, parameter)
            if value is not None:
                tables[section][key] = list(value) if key == "hidden" else value
        options = {} if self.normalize is None else {"normalize": self.normalize}
        job = job_from_tables(WHERE, self.name, "array", options, tables["model"], tables["training"],
                              tables["quality"], {})
        return job_for_dataset(job, self._dataset(None, features, with_label))

    @staticmethod
    def _dataset(frame: Any, features: List[str], with_label: bool) -> Any:
        from reducer.datasets.dataset import Dataset

        return Dataset(name="array", description="the rows given to reducer.Map.fit", load=lambda options: frame,
                       label=LABEL if with_label else None, features=tuple(features))

    def fit(self, X: Any, y: Any = None) -> "Map":
        """Train the map on the rows of X (labels y, optional); returns self."""
        import pandas as pd

        from reducer import publish, published
        from reducer.engine import model as model_lib
        from reducer.quality import stacking_warning
        from reducer.run import pipeline

        x = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, ensure_min_features=1)
        names = [str(n) for n in getattr(self, "feature_names_in_", [f"x{i}" for i in range(x.shape[1])])]
        frame = pd.DataFrame(x, columns=names)
        if y is not None:
            labels = np.asarray(y)
            if labels.shape != (len(x),):
                raise ValueError(f"y has shape {labels.shape}; expected one label per row, ({len(x)},)")
            frame[LABEL if LABEL not in names else f"{LABEL}_"] = labels
        with_label = y is not None and LABEL not in names
        job = self._job(names, with_label)
        dataset = self._dataset(frame, names, with_label)
        job, table, _, _, _ = pipeline.load_table(job, dataset)
        sample = published.sample_rows(table.rows)
        sample_raw, sample_labels = table.take(sample)
        seconds: Dict[str, float] = {}
        fitted = pipeline.fit(job, table, sample_raw, sample_labels, seconds)
        encoder = model_lib.raw_row_encoder(fitted.encoder, table, name=f"{job.name}_encoder")
        coordinates = model_lib.apply(encoder, sample_raw)
        pipeline.check_map(coordinates)
        quality = None
        if fitted.reference is not None:
            quality = pipeline.measure_quality(fitted.job, fitted.reference.result(), coordinates, fitted.decoder)
        # The stacked-rows guard of a job (one mechanism): its section and warning, as the manifest has them.
        self.map_ = pipeline.check_stacking(job.name, coordinates, table.normalised(sample_raw), sample_labels)
        self.warnings_ = [w for w in [stacking_warning(self.map_)] if w]
        for warning in self.warnings_:
            warnings.warn(f"reducer.Map: {warning}", MapWarning, stacklevel=2)
        self.encoder_ = encoder
        self.decoder_ = fitted.decoder
        self.embedding_ = model_lib.apply(encoder, table.raw()) if len(sample) < table.rows else coordinates
        self.quality_ = quality
        self.loss_per_epoch_ = list(fitted.history.losses)
        self.settings_ = fitted.job.resolved()
        del self.settings_["file"]
        self._n_features_out = fitted.job.model.latent
        self._features = names
        self._check_rows = table.raw(0, publish.ONNX_CHECK_ROWS)  # as a job checks its .onnx: the first rows
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The coordinates of the rows of X (float32, rows x latent), by the trained encoder."""
        from reducer.engine import model as model_lib

        check_is_fitted(self, "encoder_")
        x = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(model_lib.apply(self.encoder_, x.astype(np.float32)))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """fit(X, y), then the coordinates of X (the same numbers transform(X) gives)."""
        return self.fit(X, y).embedding_

    def save(self, path: "str | Path") -> Dict[str, Path]:
        """Write the trained encoder as a job writes Models/<job>.*: `<path>.keras`, `<path>.onnx`
        (checked against Keras) and `<path>.json` (its columns), any suffix of `path` dropped;
        returns {"model", "model_onnx", "model_info"} -> path. reducer.Encoder and
        `reducer encode` read them."""
        from reducer import publish

        check_is_fitted(self, "encoder_")
        base = Path(path)
        base = base.with_suffix("") if base.suffix in (".keras", ".onnx", ".json") else base
        paths = {"model": Path(f"{base}.keras"), "model_onnx": Path(f"{base}.onnx"),
                 "model_info": Path(f"{base}.json")}
        info = {"job": self.name, "features": list(self._features), "id_column": None, "label_column": None,
                "latent": int(self._n_features_out), "reducer": __version__}
        publish.write_model(paths, self.encoder_, self._check_rows, info)
        return paths
