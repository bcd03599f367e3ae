"""`genmodels evaluate`: a trained run's test metrics, written to RUN/eval.json (docs/ARCHITECTURE.md,
"One evaluate").

In order: the family's own metrics (the VAE's ELBO and importance-weighted log-likelihood, the GAN's
D outputs, the supervised head's error); for a model that encodes, the codes' worth (reconstruction
error beside PCA's, linear and 5-NN probes beside raw pixels and PCA codes); for a model that samples,
the Parzen-window log-likelihood and the sample-quality metrics in a feature network's space.

The test split is read a slice at a time (`SplitView`), never converted to floats whole, so a memory-mapped
split larger than memory is evaluated in bounded memory (tests/test_memory.py); what is kept whole is small
per image (codes, per-image log-likelihoods, features) or bounded by a setting (samples, probe images).

A vector run (data (N, D)) is evaluated on its standardised vectors, as it trained, with these differences: the
log-likelihoods (ELBO, importance-weighted, Parzen) are given in the data's own units (the standardisation's
log-Jacobian added); the image metrics (sharpness, and FID and the class histogram through the feature network)
are skipped, saying why under "skipped"; KID, precision/recall and density/coverage are computed on the
standardised vectors themselves at D <= VECTOR_QUALITY_DIMS; and for a 2-D toy (genmodels.toy) the samples' modes
covered, share of high-quality samples and mean true log-density are measured (metrics.modes)."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from . import losses, metrics
from .config import check_seed
from .data import Dataset
from .errors import GenmodelsError
from .models import EvalOptions, GenerativeModel, Model, fit_pca
from .precision import autocast, check_precision
from .runs import Run, batched, draw_samples
from .toy import TOYS, GaussianMixture

# Images compared pixel by pixel (sharpness, diversity): the first this many test images and as many samples.
PIXEL_IMAGES = 2000
# A sampler is called collapsed when its samples' classes have less than half the entropy of a uniform
# histogram (fewer than about sqrt(C) classes in use) or they cover under 5% of the test images (recall);
# without a feature network, when their diversity is below metrics.LOW_DIVERSITY.
COLLAPSED_ENTROPY_FRACTION, COLLAPSED_RECALL = 0.5, 0.05
# The probes are scored on the first this many test images (all of them for digits and Fashion-MNIST): the
# raw-pixel probe holds its test images whole, in float64.
PROBE_TEST = 10_000
# Vector data of at most this many columns get KID, precision/recall and density/coverage on the vectors themselves
# (no feature network); above it, distances between raw vectors say too little and they are skipped.
VECTOR_QUALITY_DIMS = 64
# Log-likelihoods per vector, shifted into the data's units for a vector run (the standardisation's log-Jacobian).
LOG_LIKELIHOODS = ("elbo", "log_likelihood_iw", "parzen_log_likelihood")


@dataclass(frozen=True)
class SplitView:
    """A split's images as float32 in [0, 1] on `device`, sliced like the (N, C, H, W) tensor they would make
    (len, shape, view[i:j]) without making it: each slice is read from the (possibly memory-mapped) split when
    asked for. prepare (model.eval_input, a VAE's fixed binarisation): applied to each block of BLOCK rows under
    a seed of `seed` and the block's index, so a random preparation gives every row the same draw however the
    split is sliced."""

    data: Dataset
    device: torch.device
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None
    seed: int = 0
    BLOCK: ClassVar[int] = 100

    def __len__(self) -> int:
        return len(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.data), *self.data.shape)

    def __getitem__(self, index: slice) -> torch.Tensor:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("a SplitView is sliced with step 1")
        stop = max(start, stop)
        if self.prepare is None:
            return self.data.batch(slice(start, stop)).to(self.device)
        first, b = start // self.BLOCK, self.BLOCK
        blocks = [self._block(k, self.prepare) for k in range(first, (stop - 1) // b + 1)] if stop > start else []
        x = torch.cat(blocks) if blocks else self.data.batch(slice(0, 0)).to(self.device)
        return x[start - first * b : stop - first * b]

    def _block(self, k: int, prepare: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = self.data.batch(slice(k * self.BLOCK, (k + 1) * self.BLOCK)).to(self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed((self.seed + k) % 2**63)
            return prepare(x)


def _mean_over(x: SplitView, per_image: Callable[..., torch.Tensor], batch_size: int = 1000,
               labels: torch.Tensor | None = None) -> float:
    """The mean over every image of x of per_image(batch) (B,), a batch at a time; with labels (N,),
    per_image(batch, its labels)."""
    with torch.inference_mode():
        total = sum(per_image(x[i : i + batch_size], *([] if labels is None else [labels[i : i + batch_size]]))
                    .double().sum().item() for i in range(0, len(x), batch_size))
    return total / max(len(x), 1)


def test_labels(run: Run) -> torch.Tensor | None:
    """The test labels on the run's device for a conditional model, whose encoder and decoder take each image's
    own label (None for any other model)."""
    labels = run.data.test.labels
    return labels.to(run.device) if getattr(run.model, "conditional", False) and labels is not None else None


def evaluate(run: Run, importance_samples: int = 1000, seed: int = 0, batch_size: int = 100,
             progress: bool = False, probe_train: int = 10_000, parzen_samples: int = 10_000,
             features=None, quality_samples: int = 10_000, show: Callable[[dict], None] | None = None,
             baselines: dict | None = None, precision: str | None = None, bayes_samples: int = 100) -> dict:
    """The run's test metrics; written to RUN/eval.json and returned. show: called with the results before
    they are written, so they are seen even where they cannot be saved (a read-only or full disk).

    probe_train: training images the linear and k-NN probes are fitted on (0: no probes).
    Any model that samples also gets the Parzen-window estimate from `parzen_samples` samples (0: none),
    and the sample-quality metrics from `quality_samples` samples (0: none) in the feature space of
    `features` (a directory or a FeatureNetwork; None: the feature network beside the run,
    RUN/../features, if trained on its data, else runs/features/<data source> if it exists).
    baselines: a dict shared by the evaluations of several runs on the same data (the zoo), in which the
    raw-pixel and PCA probes are kept, so each is fitted once, not once per run.
    precision: fp32 | bf16-mixed | fp16-mixed | auto, what the model's own forward runs in (its ELBO, log-likelihood,
    codes, reconstructions and samples); None: the run's train.precision. The metrics computed from those
    outputs (probes, FID and friends, Parzen, sharpness) are float32 or float64 whatever it is.
    bayes_samples: K of a conditional VAE's Bayes classifier (bayes_accuracy), classes x K decoder passes per test
    image (0: none). A conditional model's samples are drawn for uniformly drawn classes (requested_classes)."""
    if not 1 <= importance_samples <= 5000:
        raise GenmodelsError(f"--importance-samples must be between 1 and 5000, got {importance_samples}.")
    if probe_train < 0:
        raise GenmodelsError(f"--probe-train must be 0 (no probes) or a number of images, got {probe_train}.")
    if parzen_samples < 0:
        raise GenmodelsError(f"--parzen-samples must be 0 (no Parzen estimate) or more, got {parzen_samples}.")
    if quality_samples < 0:
        raise GenmodelsError(f"--quality-samples must be 0 (no sample-quality metrics) or more, got {quality_samples}.")
    if not 0 <= bayes_samples <= 5000:
        raise GenmodelsError(f"--bayes-samples must be between 0 (no bayes_accuracy) and 5000, got {bayes_samples}.")
    check_seed(seed)
    precision = check_precision(precision or run.config.train.precision, run.device)
    in_precision = functools.partial(autocast, precision, run.device, run.model)  # the model's calls, as training's
    # The writer's lock while the metrics are measured and written: no training or --overwrite can start in the
    # folder meanwhile. A folder we may not write needs none.
    with run.dir.lock("evaluation", required=False):
        test = run.data.test
        labels = None if test.labels is None else test.labels.to(run.device)
        torch.manual_seed(seed)
        # As stored, before any binarisation: the reference of sharpness and diversity.
        real = test.batch(slice(0, PIXEL_IMAGES))
        prepare = None if type(run.model).eval_input is Model.eval_input else run.model.eval_input
        x = SplitView(test, run.device, prepare, seed)  # as the model sees them, read a slice at a time
        results: dict = {"family": run.config.family, "split": "test", "images": int(x.shape[0]),
                         "eval_precision": precision}
        with torch.inference_mode(), in_precision():
            results.update(run.model.evaluate(x, labels, EvalOptions(importance_samples, batch_size, progress,
                                                                     bayes_samples)))
        if run.model.encodes:
            with in_precision():  # the codes and reconstructions; PCA (float64) and the probes (numpy) are exact
                results.update(code_metrics(run, x, probe_train, seed, baselines))
        if run.model.encodes and metrics.laplacian_fits(real):
            with in_precision():
                recon = batched(run.model.reconstruct, x[:PIXEL_IMAGES], labels=_head(test_labels(run), PIXEL_IMAGES)
                                ).float()
            if (sharp := metrics.sharpness(recon, real)) is not None:  # None: test images without edges
                results["reconstruction_sharpness"] = sharp
        if run.model.samples:
            drawn_n = max(parzen_samples, quality_samples, PIXEL_IMAGES)
            requested = requested_classes(run, drawn_n, seed)  # a conditional model's: class-balanced samples
            with in_precision():  # once, for every estimate
                drawn = draw_samples(run, drawn_n, seed, labels=requested).float()
            results.update(pixel_quality(drawn[:PIXEL_IMAGES].cpu(), real))
            if parzen_samples:
                results.update(parzen(run, parzen_samples, seed, drawn=drawn))
            if quality_samples and run.vectors:
                results.update(vector_quality(run, drawn[:quality_samples], seed))
            elif quality_samples:
                results.update(sample_quality(run, features, quality_samples, seed, progress, drawn=drawn,
                                              requested=requested))
            if run.vectors:
                results.update(toy_quality(run, drawn))
            results.update(collapse_verdict(results))
        if run.vectors:
            results.update(in_data_units(run, results))
        for k, v in results.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise GenmodelsError(f"Evaluation gave {k} = {v}; the model's weights are damaged, retrain it.")
        if show is not None:
            show(results)
        run.dir.write_eval(results)
    return results


def pixel_quality(samples: torch.Tensor, real: torch.Tensor) -> dict:
    """Sharpness (Laplacian variance over the real images', Pech-Pacheco et al. 2000) and diversity (mean
    pairwise distance over the real images') of samples, both in pixel space: 1 is like the data. Each is left
    out where it is undefined (metrics.pixels): images under 3x3 pixels or test images without edges (no
    sharpness), fewer than two images or identical test images (no diversity)."""
    n = min(len(samples), len(real), 1000)  # pairwise distances grow as n^2: 1000 images give a stable mean
    found = {"sharpness": metrics.sharpness(samples, real) if metrics.laplacian_fits(real) else None,
             "diversity": metrics.diversity(samples[:n], real[:n])}
    return {k: v for k, v in found.items() if v is not None}


def in_data_units(run: Run, results: dict) -> dict:
    """A vector run's log-likelihoods in the data's units: log p(x) = log p(z) - sum_j log std_j for the
    standardised z = (x - mean) / std; and the image metrics it skips, with the reason."""
    unit = run.standardiser
    shift = 0.0 if unit is None else -float(unit.std.log().sum())
    found: dict = {k: results[k] + shift for k in LOG_LIKELIHOODS if k in results}
    skipped = ["sharpness (vectors have no pixels)"]
    if run.model.samples:
        skipped.append("FID and the class histogram (no feature network for vectors)")
        if run.config.shape and run.config.shape[0] > VECTOR_QUALITY_DIMS:
            skipped.append(f"KID, precision/recall, density/coverage (over {VECTOR_QUALITY_DIMS} columns)")
    found["skipped"] = "; ".join(skipped)
    return found


def vector_quality(run: Run, drawn: torch.Tensor, seed: int = 0) -> dict:
    """KID, precision/recall and density/coverage of a vector run's samples (standardised) against its first
    quality-samples test vectors, on the vectors themselves; {} above VECTOR_QUALITY_DIMS columns."""
    test = run.data.test
    if test.shape[0] > VECTOR_QUALITY_DIMS:
        return {}
    real = SplitView(test, drawn.device)[: max(len(drawn), 2)]
    found = feature_distances(real.float(), drawn.float(), seed)
    found.pop("fid", None)
    return {"quality_samples": len(drawn), **found}


def toy_quality(run: Run, drawn: torch.Tensor) -> dict:
    """For a run on a 2-D toy: the samples' (data units) mean true log-density and, for a mixture of Gaussians,
    the modes they cover and their share of high-quality samples (metrics.modes; within 3 std of a centre)."""
    toy = TOYS.get(run.config.data.source)
    if toy is None or drawn.shape[1] != 2:
        return {}
    points = run.in_units(drawn.float()).cpu()
    if not torch.isfinite(points).all():  # a diverged model: the check of every value in evaluate says so
        return {"mean_log_density": float("nan")}
    found = {"mean_log_density": metrics.mean_log_density(points, toy)}
    if isinstance(toy, GaussianMixture):
        found["modes_covered"] = metrics.modes_covered(points, toy.centre_points, toy.std)
        found["modes_total"] = toy.classes
        found["high_quality_share"] = metrics.high_quality_share(points, toy.centre_points, toy.std)
    return found


def collapse_verdict(results: dict) -> dict:
    """{"collapsed": bool} from the class histogram's entropy and the recall of the samples where a feature
    network gave them, else from their diversity (COLLAPSED_ENTROPY_FRACTION, COLLAPSED_RECALL)."""
    if "class_entropy" in results and "recall" in results:
        uniform = math.log(len(results["class_histogram"]))
        return {"collapsed": results["class_entropy"] < COLLAPSED_ENTROPY_FRACTION * uniform
                or results["recall"] < COLLAPSED_RECALL}
    if "diversity" in results:
        return {"collapsed": results["diversity"] < metrics.LOW_DIVERSITY}
    return {}


def code_metrics(run: Run, x: SplitView, probe_train: int = 10_000, seed: int = 0,
                 baselines: dict | None = None) -> dict:
    """For a model that encodes: test squared reconstruction error per image (summed over pixels, as
    Hinton & Salakhutdinov 2006) beside PCA's at the same code size, and linear-probe and 5-NN test
    accuracy of its codes beside raw pixels and PCA codes. Both PCA and the probes are fitted on the
    training split (probes on a seeded subset of probe_train images). baselines: see `evaluate`."""
    from .metrics import knn_accuracy, linear_probe_accuracy

    model = cast(GenerativeModel, run.model)  # evaluate calls this only for a model that encodes
    y_all = test_labels(run)  # a conditional model reconstructs each image with its own label
    sse = lambda reconstruct, y=None: _mean_over(  # noqa: E731
        x, lambda xb, *yb: losses.reconstruction_error(reconstruct(xb, *yb), xb, "mse"), labels=y)
    out = {"reconstruction_sse": sse(model.reconstruct, y_all)}
    train = run.data.train
    pca = None
    if model.has_pca_baseline and model.latent_dim <= math.prod(x.shape[1:]):  # PCA has no overcomplete code
        pca = fit_pca(train.to(run.device), model.latent_dim)
        out["pca_reconstruction_sse"] = sse(pca.reconstruct)
    if train.labels is None or run.data.test.labels is None or probe_train == 0:
        return out
    pick = seeded_rows(len(train), probe_train, seed)
    x_fit = model.eval_input(train.batch(pick).to(run.device))
    x_probe = x[:PROBE_TEST]  # the first PROBE_TEST test images, whole: see PROBE_TEST
    y_fit, y_test = train.labels[pick].numpy(), run.data.test.labels[: len(x_probe)].numpy()
    y_fit_own = train.labels[pick].to(run.device) if y_all is not None else None
    codes = batched(model.encode, x_probe, labels=_head(y_all, len(x_probe)))
    features = {"": lambda: (batched(model.encode, x_fit, labels=y_fit_own), codes),
                "_pixels": lambda: (x_fit.flatten(1).cpu(), x_probe.flatten(1).cpu())}
    if pca is not None:
        features["_pca"] = lambda: (batched(pca.encode, x_fit), batched(pca.encode, x_probe))
    out["probe_train_images"] = len(pick)
    if len(x_probe) < len(x):
        out["probe_test_images"] = len(x_probe)
    # A baseline's probes depend only on the images probed (as the model sees them) and PCA's code size.
    seen = hashlib.blake2b(b"".join(a.tobytes() for a in (x_fit.cpu().numpy(), x_probe.cpu().numpy(), y_fit, y_test)),
                           digest_size=16).hexdigest()
    for suffix, pair in features.items():
        key = (suffix, seen, codes.shape[1] if suffix == "_pca" else None)
        if suffix and baselines is not None and key in baselines:
            out.update(baselines[key])
            continue
        fit, test = (t.double().numpy() for t in pair())
        probes = {f"linear_probe_accuracy{suffix}": linear_probe_accuracy(fit, y_fit, test, y_test),
                  f"knn_accuracy{suffix}": knn_accuracy(fit, y_fit, test, y_test)}
        out.update(probes)
        if suffix and baselines is not None:
            baselines[key] = probes
    return out


def _head(labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return None if labels is None else labels[:n]


def seeded_rows(total: int, n: int, seed: int) -> torch.Tensor:
    """A fixed seeded choice of min(n, total) row indices."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[: min(n, total)]


def train_validation_images(train: Dataset, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """A fixed seeded choice of min(n, len(train)) training images, (n, C, H, W): picks Parzen's sigma."""
    return train.batch(seeded_rows(len(train), n, seed))


def parzen(run: Run, samples: int = 10000, seed: int = 0, validation: int = 1000,
           drawn: torch.Tensor | None = None) -> dict:
    """Parzen-window log-likelihood of the test images under `samples` model samples (`drawn`: samples
    already drawn by draw_samples). Sigma is chosen on a fixed seeded subset of the TRAINING split
    (`validation` images, fewer if the split is smaller), so the test images never pick it."""
    from .metrics import parzen_estimate

    drawn = draw_samples(run, samples, seed) if drawn is None else drawn[:samples]
    x_valid = train_validation_images(run.data.train, validation, seed).to(run.device)
    x_test = SplitView(run.data.test, run.device)  # read a slice at a time
    # parzen_estimate only slices its test images, which a SplitView does like the tensor it stands for.
    return parzen_estimate(drawn, x_valid, cast(torch.Tensor, x_test)).as_dict()


def requested_classes(run: Run, n: int, seed: int = 0) -> torch.Tensor | None:
    """For a conditional model, n classes drawn uniformly (seeded) to ask its samples for; None for any other."""
    model = run.model
    if not getattr(model, "conditional", False):
        return None
    classes = model.config.classes
    return torch.randint(classes, (n,), generator=torch.Generator().manual_seed(seed + 1)).to(run.device)


def class_consistency(predicted: torch.Tensor, requested: torch.Tensor) -> float:
    """The share of samples a classifier assigns to the class they were asked for (predicted, requested: (N,))."""
    return (predicted.cpu() == requested.cpu()).float().mean().item()


def sample_quality(run: Run, features=None, samples: int = 10_000, seed: int = 0, progress: bool = False,
                   drawn: torch.Tensor | None = None, requested: torch.Tensor | None = None) -> dict:
    """FID, KID, precision/recall, density/coverage and the class histogram of `samples` model samples
    (`drawn`: samples already drawn by draw_samples) against the test images, in a feature network's
    space (genmodels.metrics, genmodels.features).
    With features None: the run's zoo's feature network or runs/features/<source> (features.find_features);
    with neither, returns {} (and says how to get them if progress). requested: the classes a conditional model's
    samples were asked for, (N,): adds class_consistency, with the network's accuracy on the test images beside it."""
    from . import metrics
    from .features import FeatureNetwork, default_features_dir, find_features, load_features

    if not isinstance(features, FeatureNetwork):
        features = features or find_features(run.dir.path, run.data, run.config.data.fingerprint)
        if features is None:
            if progress:
                print(f"no feature network in {default_features_dir(run.data.source)}, so no FID, KID, "
                      "precision/recall or density/coverage; get them with "
                      f"`genmodels features train --data {run.data.source}`")
            return {}
        features = load_features(features, run.data, run.device, recorded=run.config.data.fingerprint)
    test = run.data.test
    real = features.features(SplitView(test, features.device))  # (N, F): read a batch at a time
    drawn = draw_samples(run, samples, seed) if drawn is None else drawn[:samples]
    fake = features.features(drawn)
    predicted = features.classify(fake)
    hist = metrics.class_histogram(predicted, features.classes)
    found = {"features": features.name, "quality_samples": samples, **feature_distances(real, fake, seed),
             "class_entropy": metrics.class_entropy(hist), "class_histogram": [round(float(p), 4) for p in hist]}
    if requested is not None:
        found["class_consistency"] = class_consistency(predicted, requested[: len(predicted)])
        if test.labels is not None:
            found["class_consistency_real"] = class_consistency(features.classify(real), test.labels)
            if (intra := intra_fid(real, test.labels, fake, requested[: len(fake)])) is not None:
                found["intra_fid"] = intra
    return found


def intra_fid(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, requested: torch.Tensor
              ) -> float | None:
    """The mean over classes of the FID between the features of the samples asked for as that class and of its
    test images (Miyato & Koyama 2018, section 5); classes with under two of either are left out (None: all)."""
    real_labels, requested = real_labels.to(real.device), requested.to(fake.device)
    found = [metrics.fid(real[real_labels == c], fake[requested == c]) for c in range(int(requested.max()) + 1)
             if min(int((real_labels == c).sum()), int((requested == c).sum())) >= 2]
    return sum(found) / len(found) if found else None


def feature_distances(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict:
    """FID, KID, precision/recall and density/coverage of fake (M, F) against real (N, F) features, each left
    out where too few vectors define it (a tiny test split, --quality-samples 1): FID and KID need two on each
    side, precision and recall more than their k = 3 on each side, density and coverage more than k = 5 real
    ones. Identical sets are defined: FID and KID 0, precision, recall and coverage 1."""
    found: dict = {}
    if min(len(real), len(fake)) >= 2:
        k = metrics.kid(real, fake, generator=torch.Generator(device=real.device).manual_seed(seed))
        found.update({"fid": metrics.fid(real, fake), "kid": k.kid, "kid_std": k.std})
    if min(len(real), len(fake)) > 3:
        found.update(zip(("precision", "recall"), metrics.precision_recall(real, fake), strict=True))
    if len(real) > 5 and len(fake):
        found.update(zip(("density", "coverage"), metrics.density_coverage(real, fake), strict=True))
    return found
