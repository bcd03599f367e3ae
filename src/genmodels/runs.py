"""What the commands do with a trained run directory: sample, reconstruct, interpolate,
encode, plot the latent space and evaluate. Each reads only the run directory (and the
data source its config names) and writes only the files it is asked for."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from . import losses
from .config import RunConfig
from .data import DataSplits, Dataset, load_data
from .errors import GenmodelsError
from .models import GenerativeModel
from .report.images import grid_array, save_grid, save_pairs
from .report.plots import plot_latent


@dataclass
class Run:
    """A trained run: its directory, config and model (eval mode)."""

    dir: Path
    config: RunConfig
    model: GenerativeModel

    @cached_property
    def data(self) -> DataSplits:
        return load_data(self.config.data.source, self.config.data.data_dir)

    def split(self, name: str) -> Dataset:
        if name not in ("train", "test"):
            raise GenmodelsError(f"Unknown split {name!r}; use train or test.")
        return getattr(self.data, name)

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.model.parameters(), self.model.buffers())).device


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    model, config = ckpt.load_model(run_dir, device)
    return Run(Path(run_dir), config, model)


def _images(run: Run, split: str, n: int) -> torch.Tensor:
    data = run.split(split)
    return data.batch(slice(0, min(n, len(data)))).to(run.device)


def _batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """fn applied to x (N, ...) in batches under inference mode, results concatenated on the CPU."""
    with torch.inference_mode():
        return torch.cat([fn(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


def _encode_all(run: Run, data: Dataset, batch_size: int = 1000) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([run.model.encode(data.batch(slice(i, i + batch_size)).to(run.device)).cpu()
                          for i in range(0, len(data), batch_size)])


def sample(run: Run, n: int, out: str | Path, seed: int = 0) -> Path:
    gen = torch.Generator(device=run.device).manual_seed(seed)
    with torch.inference_mode():
        images = run.model.sample(n, generator=gen)
    return save_grid(images, out)


def reconstruct(run: Run, out: str | Path, n: int = 16, split: str = "test") -> Path:
    """Originals above their reconstructions, row by row (8 images a row)."""
    x = _images(run, split, n)
    with torch.inference_mode():
        r = run.model.reconstruct(x)
    return save_pairs(x, r, out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b (B, D) at fractions t (T,): (B, T, D)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1).clamp(-1, 1))[:, None, None]  # (B, 1, 1)
    so = torch.sin(omega).clamp_min(1e-7)
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


def interpolate(run: Run, out: str | Path, pairs: int = 8, steps: int = 10, split: str = "test",
                mode: str = "linear", seed: int = 0) -> Path:
    """Each row walks from one code to another and decodes every point on the way.

    Codes come from pairs of held-out images where the model encodes, else from the prior."""
    model = run.model
    t = torch.linspace(0, 1, steps, device=run.device)
    with torch.inference_mode():
        try:
            z = model.encode(_images(run, split, 2 * pairs))
        except GenmodelsError:
            gen = torch.Generator(device=run.device).manual_seed(seed)
            z = model.prior_sample(2 * pairs, generator=gen)
        a, b = z[0::2], z[1::2]
        if mode == "slerp":
            path = slerp(a, b, t)
        elif mode == "linear":
            path = a[:, None] + t[None, :, None] * (b - a)[:, None]  # (pairs, steps, D)
        else:
            raise GenmodelsError(f"Unknown interpolation {mode!r}; use linear or slerp.")
        images = model.decode(path.reshape(-1, z.shape[1]))
    return save_grid(images, out, nrow=steps)


def encode(run: Run, out: str | Path, split: str = "test") -> Path:
    """Codes of a whole split (posterior means for a VAE) and their labels, as .npz."""
    data = run.split(split)
    codes = _encode_all(run, data).numpy()
    arrays = {"codes": codes}
    if data.labels is not None:
        arrays["labels"] = data.labels.cpu().numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out


def latent(run: Run, out: str | Path, split: str = "test", grid: int = 20) -> Path:
    """Scatter of codes coloured by label; a 2-D latent also gets the decoded manifold:
    a grid of z = Phi^-1(u) over the unit square (Kingma & Welling 2013, Fig. 4)."""
    data = run.split(split)
    codes = _encode_all(run, data).numpy()
    labels = data.labels.cpu().numpy() if data.labels is not None else None
    manifold = None
    if codes.shape[1] == 2:
        u = torch.linspace(0.05, 0.95, grid)
        zz = torch.special.ndtri(torch.stack(torch.meshgrid(u, u.flip(0), indexing="xy"), -1).reshape(-1, 2))
        with torch.inference_mode():
            manifold = grid_array(run.model.decode(zz.to(run.device)), nrow=grid, pad=1, min_cell=24)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return plot_latent(codes, labels, out, manifold, title=f"{run.config.family} codes ({split})")


def parzen(run: Run, samples: int = 10000, seed: int = 0, validation: int = 1000,
           drawn: torch.Tensor | None = None) -> dict:
    """Parzen-window log-likelihood of the test images under `samples` model samples (GenmodelsError
    if the model cannot sample; `drawn`: samples already drawn by draw_samples). Sigma is chosen on a
    fixed seeded subset of the TRAINING split (`validation` images, fewer if the split is smaller),
    so the test images never pick it."""
    from .metrics import parzen_estimate

    drawn = draw_samples(run, samples, seed) if drawn is None else drawn[:samples]
    x_valid = train_validation_images(run.data.train, validation, seed).to(run.device)
    x_test = run.data.test.batch(slice(0, len(run.data.test))).to(run.device)
    return parzen_estimate(drawn, x_valid, x_test).as_dict()


def _seeded_rows(total: int, n: int, seed: int) -> torch.Tensor:
    """A fixed seeded choice of min(n, total) row indices."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[: min(n, total)]


def train_validation_images(train: Dataset, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """A fixed seeded choice of min(n, len(train)) training images, (n, C, H, W): picks Parzen's sigma."""
    return train.batch(_seeded_rows(len(train), n, seed))


def evaluate(run: Run, importance_samples: int = 1000, seed: int = 0, batch_size: int = 100,
             progress: bool = False, probe_train: int = 10_000, parzen_samples: int = 10_000,
             features=None, quality_samples: int = 10_000) -> dict:
    """The run's test metrics; written to RUN/eval.json and returned.

    probe_train: training images the linear and k-NN probes are fitted on (0: no probes).
    Any model that samples also gets the Parzen-window estimate from `parzen_samples` samples (0: none),
    and the sample-quality metrics from `quality_samples` samples (0: none) in the feature space of
    `features` (a directory or a FeatureNetwork; None: runs/features/<data source> if it exists)."""
    if not 1 <= importance_samples <= 5000:
        raise GenmodelsError(f"--importance-samples must be between 1 and 5000, got {importance_samples}.")
    if probe_train < 0:
        raise GenmodelsError(f"--probe-train must be 0 (no probes) or a number of images, got {probe_train}.")
    if parzen_samples < 0:
        raise GenmodelsError(f"--parzen-samples must be 0 (no Parzen estimate) or more, got {parzen_samples}.")
    if quality_samples < 0:
        raise GenmodelsError(f"--quality-samples must be 0 (no sample-quality metrics) or more, got {quality_samples}.")
    test = run.data.test
    x = test.batch(slice(0, len(test))).to(run.device)
    labels = None if test.labels is None else test.labels.to(run.device)
    torch.manual_seed(seed)
    x = run.model.eval_input(x)
    results: dict = {"family": run.config.family, "split": "test", "images": int(x.shape[0])}
    with torch.inference_mode():
        results.update(run.model.evaluate(x, labels=labels, importance_samples=importance_samples,
                                          batch_size=batch_size, progress=progress))
    results.update(code_metrics(run, x, probe_train, seed))
    if (parzen_samples or quality_samples) and _can_sample(run):
        drawn = draw_samples(run, max(parzen_samples, quality_samples), seed)  # once, for both estimates
        if parzen_samples:
            results.update(parzen(run, parzen_samples, seed, drawn=drawn))
        if quality_samples:
            results.update(sample_quality(run, features, quality_samples, seed, progress, drawn=drawn))
    for k, v in results.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise GenmodelsError(f"Evaluation gave {k} = {v}; the model's weights are damaged, retrain it.")
    ckpt.atomic_write(run.dir / "eval.json", json.dumps(results, indent=2).encode())
    return results


def code_metrics(run: Run, x: torch.Tensor, probe_train: int = 10_000, seed: int = 0) -> dict:
    """For a model that encodes: test squared reconstruction error per image (summed over pixels, as
    Hinton & Salakhutdinov 2006) beside PCA's at the same code size, and linear-probe and 5-NN test
    accuracy of its codes beside raw pixels and PCA codes. Both PCA and the probes are fitted on the
    training split (probes on a seeded subset of probe_train images)."""
    from .metrics import knn_accuracy, linear_probe_accuracy
    from .models.pca import fit_pca

    model = run.model
    try:
        codes = _batched(model.encode, x)
    except GenmodelsError:  # a family without an encoder (GAN)
        return {}
    sse = lambda reconstruct: losses.reconstruction_error(_batched(reconstruct, x), x.cpu(), "mse").mean().item()  # noqa: E731
    out = {"reconstruction_sse": sse(model.reconstruct)}
    train = run.data.train
    pca = None
    if run.config.family != "pca" and codes.shape[1] <= x[0].numel():  # PCA has no overcomplete code
        pca = fit_pca(train.to(run.device), codes.shape[1])
        out["pca_reconstruction_sse"] = sse(pca.reconstruct)
    if train.labels is None or run.data.test.labels is None or probe_train == 0:
        return out
    pick = _seeded_rows(len(train), probe_train, seed)
    x_fit = model.eval_input(train.batch(pick).to(run.device))
    y_fit, y_test = train.labels[pick].numpy(), run.data.test.labels.numpy()
    features = {"": (_batched(model.encode, x_fit), codes), "_pixels": (x_fit.flatten(1).cpu(), x.flatten(1).cpu())}
    if pca is not None:
        features["_pca"] = (_batched(pca.encode, x_fit), _batched(pca.encode, x))
    out["probe_train_images"] = len(pick)
    for suffix, (fit, test) in features.items():
        fit, test = fit.double().numpy(), test.double().numpy()
        out[f"linear_probe_accuracy{suffix}"] = linear_probe_accuracy(fit, y_fit, test, y_test)
        out[f"knn_accuracy{suffix}"] = knn_accuracy(fit, y_fit, test, y_test)
    return out


def _can_sample(run: Run) -> bool:
    try:
        with torch.inference_mode():
            run.model.sample(2, generator=torch.Generator(device=run.device).manual_seed(0))
    except GenmodelsError:
        return False
    return True


def draw_samples(run: Run, n: int, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n model samples (n, C, H, W) from a seeded generator, drawn in batches."""
    gen = torch.Generator(device=run.device).manual_seed(seed)
    with torch.inference_mode():
        return torch.cat([run.model.sample(min(batch_size, n - i), generator=gen) for i in range(0, n, batch_size)])


def sample_quality(run: Run, features=None, samples: int = 10_000, seed: int = 0, progress: bool = False,
                   drawn: torch.Tensor | None = None) -> dict:
    """FID, KID, precision/recall, density/coverage and the class histogram of `samples` model samples
    (`drawn`: samples already drawn by draw_samples) against the test images, in a feature network's
    space (genmodels.metrics, genmodels.features).
    With features None and no runs/features/<source>, returns {} (and says how to get them if progress)."""
    from . import metrics
    from .features import FeatureNetwork, default_features_dir, load_features

    if not isinstance(features, FeatureNetwork):
        if features is None and not (default_features_dir(run.data.source)).is_dir():
            if progress:
                print(f"no feature network in {default_features_dir(run.data.source)}, so no FID, KID, precision/recall "
                      f"or density/coverage; get them with `genmodels features train --data {run.data.source}`")
            return {}
        features = load_features(features or default_features_dir(run.data.source), run.data, run.device)
    test = run.data.test
    real = features.features(test.batch(slice(0, len(test))))
    drawn = draw_samples(run, samples, seed) if drawn is None else drawn[:samples]
    fake = features.features(drawn)
    k = metrics.kid(real, fake, generator=torch.Generator(device=real.device).manual_seed(seed))
    hist = metrics.class_histogram(features.predict(drawn), features.classes)
    return {"features": features.name, "quality_samples": samples, "fid": metrics.fid(real, fake),
            "kid": k.kid, "kid_std": k.std, **metrics.manifold_metrics(real, fake).as_dict(),
            "class_entropy": metrics.class_entropy(hist), "class_histogram": [round(float(p), 4) for p in hist]}
