"""A scikit-learn transformer around any genmodels model that encodes (`families_that("encodes")`).

    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    pipe = make_pipeline(AutoEncoderTransformer(latent_dim=16, epochs=10), LogisticRegression())
    pipe.fit(X, y)                      # X: (N, D) floats in [0, 1], or (N, C, H, W)

scikit-learn conventions (docs/ARCHITECTURE.md, "House rules"): the constructor only stores its arguments,
`fit` returns self, fitted attributes end in `_`, and transform checks the model is fitted.
Training runs on genmodels' engine into a temporary run directory (or `run_dir`, which must not hold a
run already unless `overwrite=True`).
"""

from __future__ import annotations

import math
import tempfile

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .data import Dataset, DataSplits
from .engine import train
from .errors import ConfigError, DataError
from .models import build_run_config, families_that, family
from .rundir import RunDir


class AutoEncoderTransformer(TransformerMixin, BaseEstimator):
    """fit trains the model on X; transform gives codes (N, latent), inverse_transform images (N, D).

    family: a family that encodes (genmodels.models.families_that("encodes")). latent_dim sets the code size
    (as the family's `with_code_size` says: for sdae, the last layer's width).
    options: any other model setting of that family, e.g. {"corrupt": ["mask:0.25"], "contractive": 0.1};
    for sdae, options["layers"] gives the widths below the code (default: its config's, less the code).
    image_shape: (C, H, W) of one row of X; None infers (1, s, s) for D = s^2, else (1, 1, D).
    run_dir: keep the run there (config, weights, metrics) instead of in a temporary folder; a folder that
    already holds a run is refused, unless overwrite=True replaces it."""

    def __init__(self, family: str = "ae", latent_dim: int = 30, options: dict | None = None, epochs: int = 20,
                 batch_size: int = 100, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                 image_shape: tuple[int, int, int] | None = None, run_dir: str | None = None,
                 overwrite: bool = False, progress: bool = False):
        self.family = family
        self.latent_dim = latent_dim
        self.options = options
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device
        self.image_shape = image_shape
        self.run_dir = run_dir
        self.overwrite = overwrite
        self.progress = progress

    # -- input checks ------------------------------------------------------------------
    def _images(self, X, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """X (N, D) or (N, C, H, W) -> float32 images (N, C, H, W) in [0, 1], or a DataError."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if x.ndim == 2:
            d = x.shape[1]
            side = math.isqrt(d)
            shape = shape or self.image_shape or ((1, side, side) if side * side == d else (1, 1, d))
            if math.prod(shape) != d:
                raise DataError(f"X has {d} features but image_shape {tuple(shape)} holds {math.prod(shape)}; "
                                "fix image_shape or the data.")
            x = x.reshape(-1, *shape)
        elif x.ndim != 4:
            raise DataError(f"X must be (n_samples, n_features) or (N, C, H, W), got shape {tuple(x.shape)}; "
                            "reshape it.")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DataError("X holds NaN, infinite or out-of-range values; scale it to [0, 1] first "
                            "(e.g. MinMaxScaler).")
        return x

    def _config(self):
        where = "the estimator's parameters"
        model_class = family(self.family, where).model
        model = model_class.with_code_size(dict(self.options or {}), self.latent_dim)
        config = build_run_config({
            "family": self.family, "model": model, "data": {"source": "array"},
            "train": {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                      "device": self.device},
        }, where=where)
        if not model_class.encodes:  # checked before training, not at the first transform
            raise ConfigError(f"The estimator's family {self.family!r} has no encoder to transform with; "
                              f"use one of {families_that('encodes')}.")
        return config

    # -- the scikit-learn API ----------------------------------------------------------
    def fit(self, X, y=None) -> AutoEncoderTransformer:
        x = self._images(X)
        labels = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.int64)
        data = Dataset(x, labels, "X")
        config = self._config()
        if self.run_dir is not None and not self.overwrite and RunDir(self.run_dir).holds_run():
            raise ConfigError(f"run_dir {self.run_dir} already holds a run; give another run_dir, or overwrite=True "
                              "to replace it.")
        # The engine evaluates every epoch on a held-out split; here that is X itself (no data is held back).
        splits = DataSplits(data, data, "array")
        with tempfile.TemporaryDirectory(prefix="genmodels-") as tmp:
            result = train(config, self.run_dir or tmp, overwrite=self.overwrite, progress=self.progress, data=splits)
        self.model_ = result.model.cpu().eval()
        self.history_ = result.history
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        self.image_shape_ = tuple(x.shape[1:])
        return self

    def _apply(self, fn, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()

    def transform(self, X) -> np.ndarray:
        """Codes (N, latent_dim): the encoder's output (the posterior mean for a VAE)."""
        check_is_fitted(self, "model_")
        return self._apply(self.model_.encode, self._images(X, self.image_shape_))

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoded images, flattened to (N, D)."""
        check_is_fitted(self, "model_")
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32))
        return self._apply(self.model_.decode, z).reshape(len(z), -1)

    def score(self, X, y=None) -> float:
        """Minus the mean squared reconstruction error per row (summed over features): higher is better,
        as GridSearchCV expects."""
        check_is_fitted(self, "model_")
        x = self._images(X, self.image_shape_)
        rec = self._apply(self.model_.reconstruct, x)
        return -float(((rec - x.numpy()) ** 2).reshape(len(x), -1).sum(1).mean())
