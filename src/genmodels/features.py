"""The feature network of the sample-quality metrics: a classifier trained per dataset.

`train_features` trains the `classifier` family on the one engine into a run directory and
writes its features record (RunDir.features_file) beside the run's files: the dataset's
fingerprint, the test accuracy, the feature width. `load_features` gives back a `FeatureNetwork`,
refusing (one sentence) a directory that is missing, damaged, or trained on other data than the
data being evaluated.
FID and friends computed in this feature space are NOT comparable with Inception-based numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from .config import merge
from .data import DataSplits, fingerprint, load_data
from .distributed import main_process
from .engine import train as run_training
from .errors import CheckpointError, GenmodelsError
from .models import FEATURE_NETWORK, Classifier, EvalOptions, build_run_config
from .progress import Progress
from .provenance import same_data
from .rundir import RunDir
from .zoodir import ZooDir

FEATURES_ROOT = Path("runs") / "features"  # default home of feature networks, relative to the working directory


def default_features_dir(source: str) -> Path:
    """runs/features/<canonical source name>: the name itself (digits, fashion-mnist), or for a
    path its file or folder name without suffix, reduced to letters, digits, '.', '_' and '-'."""
    name = source if "/" not in source and "\\" not in source else Path(source).stem
    return FEATURES_ROOT / (re.sub(r"[^A-Za-z0-9._-]", "_", name) or "data")


def find_features(run_dir: str | Path, data: DataSplits, recorded: str | None = None) -> Path | None:
    """The feature network `evaluate` uses when given none: the one a zoo keeps beside its runs
    (ZooDir.of_run(RUN).features) if it was trained on the same data (recorded: the run's data fingerprint,
    if known), else default_features_dir(data.source) if it exists (load_features checks its data); None if neither."""
    beside = ZooDir.of_run(run_dir).features
    try:
        record = RunDir(beside).read_features_record()
    except (GenmodelsError, ValueError):  # unreadable or damaged: not this run's
        record = None
    if record is not None and same_data(data, record.get("fingerprint"), recorded):
        return beside
    default = default_features_dir(data.source)
    return default if default.is_dir() else None


@dataclass
class FeatureNetwork:
    """A trained feature classifier: features and predictions of images in [0, 1] (B, C, H, W)."""

    model: Classifier
    dir: Path
    accuracy: float  # test accuracy on the data it was trained on
    fingerprint: str  # of that data (see `fingerprint`)
    batch_size: int = 1000

    def __post_init__(self) -> None:
        # On the CPU, oneDNN runs the conv body about 3x faster with channels-last weights (NHWC: a
        # pixel's channels adjacent, so the convolutions, ReLUs and max-pools all vectorise over
        # channels; the NCHW max-pool alone took as long as the convolutions). Measured with
        # benchmarks/eval_speed.py; the features agree to float32 rounding. Linear weights are untouched.
        if self.device.type == "cpu":
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it

    @property
    def name(self) -> str:
        return f"classifier@{self.dir} (test acc {self.accuracy:.3f}, fingerprint {self.fingerprint[:8]})"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def classes(self) -> int:
        return self.model.config.classes

    def _batched(self, fn, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            step = self.batch_size
            return torch.cat([fn(x[i : i + step].to(self.device)) for i in range(0, len(x), step)])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim), on the network's device."""
        return self._batched(self.model.features, x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes (N,) int64."""
        return self._batched(lambda b: self.model.logits(b).argmax(1), x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted classes (N,) int64 of the images whose `features` (N, feature_dim) this network gave: the
        head alone, so images already through the body (for FID and friends) do not go through it again."""
        return self._batched(lambda f: self.model.head(f).argmax(1), features)


def _retrain_hint(out: Path, source: str) -> str:
    return f"run `genmodels features train --data {source} --out {out}`"


def train_features(data: str | DataSplits, out: str | Path | None = None, *, epochs: int | None = None,
                   progress: Progress = True, overwrite: bool = False, data_dir: str | None = None,
                   model: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> FeatureNetwork:
    """Train the feature classifier on `data` (a source name or loaded splits) into `out` (default
    runs/features/<source>) and write its features record; model and train override the config's sections."""
    model = {k: v for k, v in (model or {}).items() if v is not None}
    train = {k: v for k, v in (train or {}).items() if v is not None}
    splits = data if isinstance(data, DataSplits) else load_data(data, data_dir)
    out = Path(out) if out is not None else default_features_dir(splits.source)
    source = {"source": splits.source, "data_dir": None if isinstance(data, DataSplits) else data_dir}
    values = merge({"family": FEATURE_NETWORK, "model": model, "data": source, "train": train},
                   {"train": {"epochs": epochs}})
    if "classes" not in model:  # the data's classes; without labels, 2 lets the model say it needs labels
        values["model"]["classes"] = max(2, splits.num_classes or 2)
    config = build_run_config(values, "the feature network's settings")
    result = run_training(config, out, overwrite=overwrite, progress=progress, data=splits)
    net = cast(Classifier, result.model)  # the family built from FEATURE_NETWORK's config
    dev, test = next(net.parameters()).device, splits.test
    assert test.labels is not None, "the classifier's check_data refuses data without labels before training"
    x = test.batch(slice(0, len(test))).to(dev)
    accuracy = net.evaluate(x, test.labels.to(dev), EvalOptions(batch_size=1000))["test_accuracy"]
    record = {"family": FEATURE_NETWORK, "source": splits.source, "fingerprint": fingerprint(splits),
              "test_accuracy": accuracy, "feature_dim": net.config.feature_dim, "classes": net.config.classes,
              "arch": net.arch, "epochs": config.train.epochs,
              "train_seconds": round(sum(result.epoch_seconds), 1), "shape": list(splits.shape)}
    if main_process():  # under torchrun, rank 0 alone, as it alone wrote the run (the others would wait on its lock)
        with RunDir(out).lock("feature network"):  # the record too is written by the one writer of the folder
            RunDir(out).write_features_record(record)
    return FeatureNetwork(net, out, accuracy, record["fingerprint"])


def load_features(dir: str | Path, data: DataSplits | None = None, device: str | torch.device = "cpu",
                  recorded: str | None = None) -> FeatureNetwork:
    """The feature network in `dir`; with `data`, also check it was trained on exactly that data (recorded: the
    fingerprint of `data` where it is already known, so they are not hashed again)."""
    dir = Path(dir)
    rd = RunDir(dir)
    damaged = f"{rd.features_file} is damaged; {_retrain_hint(dir, 'X')} --overwrite."
    try:
        meta = rd.read_features_record()
    except ValueError:  # not JSON, or not a JSON object
        raise CheckpointError(damaged) from None
    if meta is None:
        src = data.source if data is not None else "X"
        raise CheckpointError(f"{dir} holds no feature network ({rd.features_file.name} is missing); "
                              f"{_retrain_hint(dir, src)}.")
    try:
        stored, accuracy = str(meta["fingerprint"]), float(meta["test_accuracy"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(damaged) from None
    model, cfg = rd.load_model(device)
    if not isinstance(model, Classifier):
        raise CheckpointError(f"{dir} holds a {cfg.family} run, not a feature network; "
                              f"{_retrain_hint(dir, cfg.data.source)} into another folder.")
    if data is not None and not same_data(data, stored, recorded):  # recorded: data's known fingerprint
        raise CheckpointError(f"The features in {dir} were trained on another dataset ({meta.get('source')}, "
                              f"fingerprint {stored[:8]}); {_retrain_hint(dir, data.source)} --overwrite, "
                              "or pass --features naming a feature network trained on this data.")
    return FeatureNetwork(model, dir, accuracy, stored)
