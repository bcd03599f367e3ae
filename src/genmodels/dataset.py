"""One split of images or vectors and their labels (`Dataset`), a source's two splits (`DataSplits`), the `Batch` a
training step sees, the `Standardiser` of vector data, and the fingerprint that tells whether two sets of data are
the same (docs/ARCHITECTURE.md, "The run directory"). Where the data come from is `data.py`'s job; these types hold
them, in memory or memory-mapped.

Two kinds of data: images (N, C, H, W), uint8 or float32 in [0, 1], and vectors (N, D) float32 in any units. A
model sees vectors standardised with the training split's mean and std (`Standardiser`, applied as each batch is
read, so a memory-mapped file is never copied); every output in data units undoes it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from .errors import DataError
from .fileio import MiB

# Data of at most FINGERPRINT_WHOLE stored image bytes (every built-in source) are fingerprinted whole; larger
# ones by FINGERPRINT_BLOCKS runs of consecutive rows, about FINGERPRINT_SAMPLE bytes, so a big memory-mapped
# file is read only there.
FINGERPRINT_WHOLE, FINGERPRINT_SAMPLE, FINGERPRINT_BLOCKS = 256 * MiB, 32 * MiB, 64
_ROWS = 8192  # vectors read at a time when their statistics are computed or checked


class Batch(NamedTuple):
    """What one training step sees: images and, for a model that needs them, their labels."""

    x: torch.Tensor  # (B, C, H, W) float32 in [0, 1], or vectors (B, D) float32 standardised
    labels: torch.Tensor | None = None  # (B,) int64, or None for a model that does not need labels


@dataclass(frozen=True)
class Standardiser:
    """x -> (x - mean) / std per column of vector data, and back: mean and std (D,) float64 of the training split."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, data: Dataset) -> Standardiser:
        """The mean and std (population, float64) of a split's vectors, merged a block of rows at a time (Chan et
        al.'s pairwise update), so a memory-mapped split is read a block at a time and never copied. A constant
        column, which no std can scale, is refused in one sentence."""
        if len(data) < 2:
            raise DataError(f"{data.name} holds {len(data)} vector(s), too few to standardise (a std needs two); "
                            "give more rows.")
        d = data.shape[0]
        n, mean, m2 = 0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        for i in range(0, len(data), _ROWS):
            block = data.stored(slice(i, i + _ROWS)).to("cpu", torch.float64)
            k, block_mean = block.shape[0], block.mean(0)
            delta = block_mean - mean
            m2 += (block - block_mean).square().sum(0) + delta.square() * (n * k / (n + k))
            mean += delta * (k / (n + k))
            n += k
        std = (m2 / max(n, 1)).sqrt()
        constant = (std <= 1e-12 * mean.abs().clamp_min(1.0)).nonzero().flatten()
        if len(constant):
            j = int(constant[0])
            raise DataError(f"{data.name} has {len(constant)} constant column(s) (column {j} is {mean[j].item():g} in "
                            "every row), which carry no information and cannot be standardised; drop them.")
        return cls(mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Vectors in data units (B, D) -> standardised float32 (a new tensor)."""
        mean, std = self.mean.to(x.device, torch.float32), self.std.to(x.device, torch.float32)
        return (x.float() - mean) / std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised vectors (B, D) -> data units, float32, on z's device."""
        return (z.double() * self.std.to(z.device) + self.mean.to(z.device)).float()

    def to_config(self) -> dict[str, list[float]]:
        """As config.json records it (DataConfig.standardiser): {"mean": [...], "std": [...]}."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> Standardiser:
        return cls(torch.tensor(values["mean"], dtype=torch.float64), torch.tensor(values["std"], dtype=torch.float64))


def check_finite(data: Dataset) -> None:
    """A one-sentence DataError where any stored vector of a split holds NaN or infinity; a block at a time."""
    bad = first = 0
    for i in range(0, len(data), _ROWS):
        rows = ~torch.isfinite(data.stored(slice(i, i + _ROWS))).all(1)
        if not bad and rows.any():
            first = i + int(rows.nonzero()[0])
        bad += int(rows.sum())
    if bad:
        raise DataError(f"{data.name} has {bad} row(s) holding NaN or infinity (the first is row {first}); "
                        "remove or fill those rows first.")


@dataclass
class Dataset:
    """One split: images (N, C, H, W) uint8 or float32 in [0, 1], or vectors (N, D) float32; labels (n,) int64 or
    None.

    rows, when given, are the indices (n,) of this split's images among the stored ones: a
    memory-mapped file is split without copying it (images is then the whole mapped array).
    standardiser: for vectors, what `batch` applies (DataSplits sets it from the training split)."""

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str
    rows: torch.Tensor | None = None
    standardiser: Standardiser | None = None

    def __post_init__(self) -> None:
        if self.images.ndim == 2 and self.images.dtype == torch.float32:
            pass
        elif self.images.ndim != 4 or self.images.dtype not in (torch.uint8, torch.float32):
            raise DataError(f"dataset {self.name} images must be one (N, C, H, W) uint8 or float32 tensor (or vectors "
                            f"(N, D) float32), got shape {tuple(self.images.shape)} and dtype {self.images.dtype}; "
                            "convert them first.")
        if self.labels is not None and tuple(self.labels.shape) != (len(self),):
            raise DataError(f"dataset {self.name} has {len(self)} images but labels of shape "
                            f"{tuple(self.labels.shape)}; give one label per image or none.")

    def __len__(self) -> int:
        return self.images.shape[0] if self.rows is None else self.rows.shape[0]

    @property
    def kind(self) -> str:
        """"vectors" for (N, D) data, "images" for (N, C, H, W)."""
        return "vectors" if self.images.ndim == 2 else "images"

    def stored(self, index: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """The images as stored (uint8 or float32), (B, C, H, W), of the rows `index` picks (all by default):
        a view for a slice of unsplit images, else gathered, so only the rows asked for are read."""
        if self.rows is not None:  # positions in this split -> rows of the stored images
            index = self.rows[index]
        # index_select gathers rows several times faster than advanced indexing on a 4-D tensor.
        return self.images[index] if isinstance(index, slice) else self.images.index_select(0, index)

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image, or (D,) of one vector."""
        return tuple(int(d) for d in self.images.shape[1:])

    def to(self, device) -> Dataset:
        labels = None if self.labels is None else self.labels.to(device)
        rows = None if self.rows is None else self.rows.to(device)
        return Dataset(self.images.to(device), labels, self.name, rows, self.standardiser)

    def batch(self, index: torch.Tensor | slice) -> torch.Tensor:
        """float32 images in [0, 1] (B, C, H, W), or standardised vectors (B, D), for the rows `index` picks, on
        the images' device."""
        x = self.stored(index)
        if x.dtype == torch.uint8:
            return x.float().div_(255)
        if self.standardiser is not None:
            return self.standardiser.forward(x)
        # Already float32: a slice of unsplit images is a view, and a model corrupting its input in place
        # (denoising) would then change the dataset itself; a gather copies anyway.
        return x.clone() if isinstance(index, slice) and self.rows is None else x

    def take(self, index: torch.Tensor | slice, labels: bool = False) -> Batch:
        """The rows `index` picks as a Batch, with their labels if asked for (and the split has them)."""
        y = None
        if labels and self.labels is not None:
            y = self.labels[index] if isinstance(index, slice) else self.labels.index_select(0, index)
        return Batch(self.batch(index), y)


@dataclass
class DataSplits:
    """The train and test splits of one source, with the canonical name of that source and, where
    the data name them, the names of its classes in label order (None where labels are their own
    names, as for digits, or the source has no names)."""

    train: Dataset
    test: Dataset
    source: str
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Vector splits: checked (finite, the same width) and standardised with the training split's mean and std,
        unless a standardiser is given already (the one a run recorded)."""
        if self.train.kind != "vectors" and self.test.kind != "vectors":
            return
        if self.train.kind != self.test.kind or self.train.shape != self.test.shape:
            raise DataError(f"{self.source} has train data of shape {self.train.shape} but test data of shape "
                            f"{self.test.shape}; both splits must hold vectors of the same width.")
        for split in (self.train, self.test):
            check_finite(split)
        found = self.train.standardiser or Standardiser.fit(self.train)
        self.train.standardiser = self.test.standardiser = found

    @property
    def kind(self) -> str:
        """"vectors" or "images" (Dataset.kind)."""
        return self.train.kind

    @property
    def standardiser(self) -> Standardiser | None:
        return self.train.standardiser

    @property
    def shape(self) -> tuple[int, ...]:
        return self.train.shape

    @property
    def num_classes(self) -> int | None:
        """max label + 1 over both splits; None when neither split has labels."""
        tops = [int(d.labels.max()) for d in (self.train, self.test) if d.labels is not None and len(d)]
        return max(tops) + 1 if tops else None


def fingerprint(data: DataSplits) -> str:
    """sha256 (hex) over the train and test images' and labels' shapes, dtypes and bytes. Above
    FINGERPRINT_WHOLE image bytes, the images hashed are FINGERPRINT_BLOCKS runs of consecutive stored rows at
    evenly spaced places (about FINGERPRINT_SAMPLE bytes in all, so a memory-mapped file is read only there),
    beside each split's size, its rows and every label: a change to other images goes unseen."""
    splits = (data.train, data.test)
    total = sum(len(s) * math.prod(s.images.shape[1:]) * s.images.element_size() for s in splits)
    whole = total <= FINGERPRINT_WHOLE
    h = hashlib.sha256()
    if not whole:
        h.update(b"sampled")
    for split in splits:
        if whole:  # the stored rows in blocks: the same bytes as the split at once, never a copy of it whole
            h.update(f"{(len(split), *split.shape)}{split.images.dtype}".encode())
            row = max(1, math.prod(split.shape) * split.images.element_size())
            step = max(1, FINGERPRINT_SAMPLE // FINGERPRINT_BLOCKS // row)
            for i in range(0, len(split), step):
                h.update(_raw(split.stored(slice(i, i + step))))
        parts = [] if whole else [*_blocks(split.images), split.rows]
        if not whole:
            h.update(f"{len(split)}:".encode())
        for t in (*parts, split.labels):
            if t is None:
                h.update(b"none")
                continue
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            h.update(_raw(t))
    return h.hexdigest()


def _raw(t: torch.Tensor) -> Any:
    """The tensor's bytes as a buffer for hashlib, without a copy where it is contiguous on the CPU (typed Any:
    numpy's stubs do not declare ndarray a Buffer on Python 3.11)."""
    return t.detach().to("cpu").contiguous().numpy().reshape(-1).view(np.uint8)


def _blocks(images: torch.Tensor) -> list[torch.Tensor]:
    """FINGERPRINT_BLOCKS runs of consecutive stored rows, evenly spaced, about FINGERPRINT_SAMPLE bytes in all."""
    n = images.shape[0]
    row = max(1, math.prod(images.shape[1:]) * images.element_size())
    per = max(1, min(n, FINGERPRINT_SAMPLE // FINGERPRINT_BLOCKS // row))
    starts = sorted({i * max(n - per, 0) // max(FINGERPRINT_BLOCKS - 1, 1) for i in range(FINGERPRINT_BLOCKS)})
    return [images[s : s + per] for s in starts]
