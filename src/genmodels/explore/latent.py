"""What the explorer asks of one trained run, with no web in it: the map of its test codes, the sliders'
dimensions and ranges, decoding codes and map points into PNG images, walks between codes, prior samples,
and a user's own image encoded (docs/ARCHITECTURE.md, "Explorer").

Every method takes plain numbers already checked by the server (explore/server.py) and runs the model
under inference mode; nothing here writes a file, so the run directory is only ever read.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from PIL import Image

from ..datafiles import image_pixels
from ..errors import DataError, GenmodelsError
from ..models import GenerativeModel
from ..runs import Run, batched, class_names, path_between

MAX_POINTS = 2000  # test images on the map: enough to see the classes, few enough to draw and send at once
SLIDERS = 8  # latent dimensions given a slider: all of a small code, the most varied of a wide one
SPAN = 3.0  # a prior's sliders run over +-3 standard deviations


def png_url(image: torch.Tensor) -> str:
    """One image (C, H, W) in [0, 1] as a data: URL of a PNG at its own size (the page enlarges it)."""
    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    arr = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", compress_level=1)  # tiny images: speed over a few bytes
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Projection:
    """Codes (N, D) to the map's 2-D plane and back: the codes themselves when D = 2, else their first two
    principal axes (Pearson 1901), a map point standing for the code at the mean along the other axes."""

    mean: torch.Tensor  # (D,)
    axes: torch.Tensor  # (2, D), orthonormal rows; the identity for 2-D codes
    explained: tuple[float, float] | None  # the share of the codes' variance along each axis; None: no PCA

    @classmethod
    def fit(cls, codes: torch.Tensor) -> Projection:
        codes = codes.double()
        if codes.shape[1] == 2:
            return cls(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), None)
        if codes.shape[1] == 1:  # a 1-D code is drawn along x, the y axis spreads nothing
            return cls(torch.zeros(1, dtype=torch.float64), torch.tensor([[1.0], [0.0]], dtype=torch.float64), None)
        mean = codes.mean(0)
        _, s, vh = torch.linalg.svd(codes - mean, full_matrices=False)  # rows of vh: the principal axes
        var = s.square()
        share = (var[:2] / var.sum().clamp_min(1e-300)).tolist()
        return cls(mean, vh[:2], (share[0], share[1]))

    def to_map(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes.double() - self.mean) @ self.axes.T  # (N, 2)

    def to_code(self, points: torch.Tensor) -> torch.Tensor:
        return self.mean + points.double() @ self.axes  # (N, D)

    @property
    def note(self) -> str:
        if self.explained is None:
            return "The map shows the codes as they are."
        a, b = self.explained
        return (f"The codes have {self.axes.shape[1]} dimensions: the map shows their first two principal axes "
                f"({a:.0%} and {b:.0%} of the variance); a point on it decodes the code at the mean along the others.")


class ExploredRun:
    """A loaded run and what the explorer has worked out about it once, at start-up. A vector run's outputs are
    vectors in the data's own units (its standardiser undone); a conditional run decodes under a class, by default
    its commonest training class."""

    def __init__(self, run: Run, key: str, name: str):
        self.run, self.key, self.name = run, key, name
        model = self.model
        self.vectors = run.vectors
        self.classes = class_names(run) if model.conditional else None
        self.label = model.commonest_class() if model.conditional else 0  # decoded when a request names none
        self.dim = model.latent_dim
        self.test = run.data.test
        self.shown = min(MAX_POINTS, len(self.test))
        self.prior_range = self._prior_range()
        self.projection: Projection | None = None
        self.map: torch.Tensor | None = None
        if model.encodes:
            x = self.test.batch(slice(0, self.shown)).to(run.device)
            labels = self._test_labels(slice(0, self.shown))
            codes = (batched(model.encode, x) if labels is None else batched(model.encode_with, x, labels=labels))
            codes = codes.float()  # (shown, D)
            self._check_finite(codes)
            self.codes = codes
            self.projection = Projection.fit(codes)
            self.map = self.projection.to_map(codes).float()
            spread = codes.std(0) if len(codes) > 1 else torch.ones(self.dim)
            self.dims = spread.argsort(descending=True)[:SLIDERS].tolist()
            lo, hi = codes.min(0).values, codes.max(0).values
            pad = (hi - lo).clamp_min(1e-3) * 0.1
            self.ranges = torch.stack([lo - pad, hi + pad], 1)  # (D, 2): the codes' extent and a tenth more
            self.centre = codes.mean(0)
        else:
            self.dims = list(range(min(SLIDERS, self.dim)))
            self.ranges = torch.tensor([self.prior_range] * self.dim)  # a model that only samples has a prior range
            self.centre = torch.zeros(self.dim)
        with torch.inference_mode():
            self._check_finite(self.ranges, self._decoded(self.centre[None], None))
        sample = self.test.batch(slice(0, min(256, len(self.test))))
        self.dark = not self.vectors and _border(sample) < 0.5

    def _test_labels(self, rows: slice) -> torch.Tensor | None:
        """The labels of test rows, for a conditional model (it encodes each with its own); None for any other."""
        if self.classes is None or self.test.labels is None:
            return None
        return self.test.labels[rows].to(self.run.device)

    def _decoded(self, codes: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Codes (B, D) decoded under labels (B,) (a conditional model; None: its default class), on the CPU: images
        (B, C, H, W) in [0, 1], or vectors (B, D) in the data's units."""
        codes = codes.to(self.run.device, torch.float32)
        return self.run.in_units(self.model.decode_with(codes, self._labels_for(len(codes), labels))).float().cpu()

    def _labels_for(self, n: int, labels: torch.Tensor | None) -> torch.Tensor | None:
        """labels on the run's device, or for a conditional model asked for none, n of its default class."""
        if self.classes is not None and labels is None:
            labels = torch.full((n,), self.label, dtype=torch.long)
        return None if labels is None else labels.to(self.run.device)

    def _check_finite(self, *numbers: torch.Tensor) -> None:
        """Refuse a model whose codes, slider ranges or images are not numbers (NaN or infinite weights, or
        weights so large they overflow): every answer about it would hold NaN, which JSON cannot carry."""
        if not all(bool(torch.isfinite(x).all()) for x in numbers):
            raise GenmodelsError(f"The {self.run.config.family} run in {self.run.dir} computes numbers that are not "
                                 "finite (NaN or infinity) from its weights; retrain it, or explore another run.")

    @property
    def model(self) -> GenerativeModel:
        # load_runs refuses a run whose model decodes nothing, and only generative models decode.
        return cast(GenerativeModel, self.run.model)

    def _prior_range(self) -> tuple[float, float] | None:
        """The sliders' range for a model that samples: its prior's bounds, else SPAN standard deviations."""
        if not self.model.samples:
            return None
        return self.model.prior_bounds or (-SPAN, SPAN)

    def describe(self) -> dict:
        """What the page needs to draw this run: capabilities, the map, the sliders; a vector run's test vectors
        (data units) and a conditional run's classes."""
        classes = self.run.data.classes
        info = {"key": self.key, "name": self.name, "family": self.run.config.family, "dim": self.dim,
                "shape": list(self.model.shape), "encodes": self.model.encodes, "samples": self.model.samples,
                "centre": self.centre.tolist(), "ranges": self.ranges.tolist(),
                "sliders": self.dims, "ema": self.model.samples_from_average,
                "kind": "vectors" if self.vectors else "images",
                "classes": self.classes, "label": self.label if self.classes is not None else None}
        labels = self.test.labels[: self.shown].tolist() if self.test.labels is not None else None
        if self.map is not None and self.projection is not None:
            info["map"] = {"points": [[round(x, 5), round(y, 5)] for x, y in self.map.tolist()], "labels": labels,
                           "classes": list(classes) if classes else None, "note": self.projection.note,
                           "of": len(self.test)}
        if self.vectors:
            info["data"] = self._vectors(labels, list(classes) if classes else None)
        return info

    def _vectors(self, labels: list[int] | None, classes: list[str] | None) -> dict:
        """The test vectors the page draws outputs against, in data units: each column's extent and middle 90%
        (the scale of a D > 2 vector's chart), and for 2-D data the test points themselves (the data plane)."""
        test = self.run.in_units(self.test.batch(slice(0, self.shown))).double()  # (shown, D)
        q = torch.quantile(test, torch.tensor([0.0, 0.05, 0.95, 1.0], dtype=torch.float64), dim=0).T  # (D, 4)
        data: dict = {"extent": q[:, [0, 3]].tolist(), "band": q[:, [1, 2]].tolist(), "labels": labels,
                      "classes": classes, "of": len(self.test)}
        if test.shape[1] == 2:
            data["points"] = [[round(x, 5), round(y, 5)] for x, y in test.tolist()]
        return data

    # -- the model's work, under inference mode -------------------------------------------------------------
    def decode(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> list:
        """Codes (B, D) decoded (under labels (B,) for a conditional model; None: its default class): each image
        as a PNG data URL, or each vector as its numbers in the data's units."""
        with torch.inference_mode():
            out = self._decoded(codes, labels)
        return out.tolist() if self.vectors else [png_url(im) for im in out]

    def points_to_codes(self, points: torch.Tensor) -> torch.Tensor:
        if self.projection is None:  # the server checks first: a bug if reached
            raise GenmodelsError(f"The {self.name} run has no map (its model does not encode); send codes instead.")
        return self.projection.to_code(points).float()

    def test_image(self, index: int) -> str | list[float]:
        """Test image `index` as a PNG data URL, or test vector `index` in the data's units."""
        x = self.test.batch(slice(index, index + 1))
        return self.run.in_units(x)[0].tolist() if self.vectors else png_url(x[0])

    def code_of(self, index: int) -> torch.Tensor:
        """The code of test image `index` (the map's, when it is on the map), a conditional model's given its
        own label."""
        if index < self.shown:
            return self.codes[index]
        x = self.test.batch(slice(index, index + 1)).to(self.run.device)
        with torch.inference_mode():
            return self.model.encode_with(x, self._test_labels(slice(index, index + 1)))[0].float().cpu()

    def encode_vectors(self, values: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors (B, D) in the data's units (a point clicked on the data plane) encoded: codes (B, latent)."""
        standardiser = self.run.standardiser
        x = values if standardiser is None else standardiser.forward(values)
        return self._encoded(x, labels)

    def _encoded(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.encode_with(x.to(self.run.device), self._labels_for(len(x), labels)).float().cpu()

    def to_map(self, codes: torch.Tensor) -> list[list[float]] | None:
        return self.projection.to_map(codes).tolist() if self.projection is not None else None

    def walk(self, a: torch.Tensor, b: torch.Tensor, steps: int, mode: str) -> torch.Tensor:
        """Codes on the way from a to b (D,), both ends included: (steps, D) (runs.slerp: the straight line
        where the arc is not defined)."""
        return path_between(a[None], b[None], torch.linspace(0, 1, steps), mode)[0]

    def draw(self, n: int, seed: int, label: int | None = None) -> tuple[list[list[float]], list]:
        """n codes from the prior, seeded, and their decoded outputs (a GAN's from its averaged weights, as
        sampling; a conditional model's under class `label`, as model.sample(n, labels=) draws them)."""
        with torch.inference_mode():
            z = self.model.prior_sample(n, generator=torch.Generator(device=self.run.device).manual_seed(seed))
        labels = None if label is None else torch.full((n,), label, dtype=torch.long)
        return z.float().cpu().tolist(), self.decode(z, labels)

    def own_image(self, data: bytes, invert: str, label: int | None = None) -> dict:
        """A user's PNG or JPEG: fitted to the run's shape, then (for a model that encodes) encoded,
        reconstructed and placed on the map. invert: auto | yes | no (auto: when its border is light and
        the data's is dark, or the reverse, as a photo of ink on paper is to MNIST-like data). label: the
        class a conditional model encodes and decodes it under (None: its default)."""
        if self.vectors:  # the server checks first: a bug if reached
            raise GenmodelsError(f"The {self.name} run was trained on vectors, not images; click the data plane.")
        pixels, _ = image_pixels(io.BytesIO(data), "The file", "drop a PNG or JPEG image", on_white=True)
        x = fit_image(pixels, self.model.shape)  # (1, C, H, W)
        inverted = invert == "yes" or (invert == "auto" and (_border(x) < 0.5) != self.dark)
        if inverted:
            x = 1 - x
        out = {"input": png_url(x[0]), "inverted": inverted}
        if self.model.encodes:
            labels = None if label is None else torch.tensor([label])
            code = self._encoded(x, labels)
            point = self.to_map(code)  # a model that encodes has a map
            out |= {"code": code[0].tolist(), "image": self.decode(code, labels)[0], "point": point and point[0]}
        return out


def fit_image(pixels: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """Pixels (H, W) or (H, W, 3), uint8, as one image of `shape` (1, C, H, W) in [0, 1]: padded to the
    run's aspect with its own border colour (never stretched), then resized with a Lanczos filter."""
    c, h, w = shape
    im = Image.fromarray(pixels).convert("L" if c == 1 else "RGB")
    if c not in (1, 3):
        raise DataError(f"This run's images have {c} channels; only grey and RGB runs take an image file.")
    ih, iw = im.height, im.width
    if ih * w != iw * h:  # pad the short side so the content keeps its proportions
        arr = np.asarray(im)
        edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).reshape(-1, *arr.shape[2:])
        fill = tuple(int(v) for v in np.median(edge, axis=0).reshape(-1))
        size = (max(iw, -(-ih * w // h)), max(ih, -(-iw * h // w)))
        canvas = Image.new(im.mode, size, fill[0] if c == 1 else fill)
        canvas.paste(im, ((size[0] - iw) // 2, (size[1] - ih) // 2))
        im = canvas
    im = im.resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    x = torch.from_numpy(arr.copy())
    x = x[None] if c == 1 else x.permute(2, 0, 1)
    return x[None]


def _border(x: torch.Tensor) -> float:
    """The mean of the outermost pixels of images (N, C, H, W): the background's brightness."""
    edges = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1)
    return float(edges.float().mean())
