"""What the commands do with a trained run directory: sample, reconstruct, interpolate, encode and
plot the latent space. Each reads only the run directory (and the data source its config names) and
writes only the file it is asked for. Each first checks the capability its model class declares
(docs/ARCHITECTURE.md, "Capabilities"), so a run of the wrong family gets one sentence, not a traceback."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .data import DataSplits, Dataset, load_data
from .errors import GenmodelsError
from .images import grid_array, save_grid, save_pairs
from .models import Model, RunConfig, families_that
from .plots import plot_latent
from .rundir import RunDir


@dataclass
class Run:
    """A trained run: its directory, config and model (eval mode)."""

    dir: RunDir
    config: RunConfig
    model: Model

    def __post_init__(self) -> None:
        self.dir = RunDir(self.dir) if not isinstance(self.dir, RunDir) else self.dir

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


def load_run(run_dir: str | Path | RunDir, device: str = "cpu") -> Run:
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    model, config = rd.load_model(device)
    return Run(rd, config, model)


def require(run: Run, capability: str, what: str) -> None:
    """A one-sentence error unless the run's model declares `capability` ("encodes" or "samples")."""
    if not getattr(run.model, capability):
        lacks = {"encodes": "has no encoder", "samples": "cannot sample"}[capability]
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} {lacks}, so it cannot {what}; "
                             f"use a run of a family that {capability} ({families_that(capability)}).")


def _images(run: Run, split: str, n: int) -> torch.Tensor:
    data = run.split(split)
    return data.batch(slice(0, min(n, len(data)))).to(run.device)


def batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """fn applied to x (N, ...) in batches under inference mode, results concatenated on the CPU."""
    with torch.inference_mode():
        return torch.cat([fn(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


def encode_split(run: Run, data: Dataset, batch_size: int = 1000) -> torch.Tensor:
    """Codes of every image of a split, (N, latent_dim) on the CPU."""
    with torch.inference_mode():
        return torch.cat([run.model.encode(data.batch(slice(i, i + batch_size)).to(run.device)).cpu()
                          for i in range(0, len(data), batch_size)])


def sample(run: Run, n: int, out: str | Path, seed: int = 0) -> Path:
    require(run, "samples", "draw samples")
    gen = torch.Generator(device=run.device).manual_seed(seed)
    with torch.inference_mode():
        images = run.model.sample(n, generator=gen)
    return save_grid(images, out)


def reconstruct(run: Run, out: str | Path, n: int = 16, split: str = "test") -> Path:
    """Originals above their reconstructions, row by row (8 images a row)."""
    require(run, "encodes", "reconstruct")
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
    if mode not in ("linear", "slerp"):
        raise GenmodelsError(f"Unknown interpolation {mode!r}; use linear or slerp.")
    model = run.model
    if not model.decodes:
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} has no latent space to walk; "
                             f"use a run of a family that encodes or samples ({families_that('encodes', 'samples')}).")
    t = torch.linspace(0, 1, steps, device=run.device)
    with torch.inference_mode():
        if model.encodes:
            z = model.encode(_images(run, split, 2 * pairs))
        else:
            z = model.prior_sample(2 * pairs, generator=torch.Generator(device=run.device).manual_seed(seed))
        a, b = z[0::2], z[1::2]
        if mode == "slerp":
            path = slerp(a, b, t)
        else:
            path = a[:, None] + t[None, :, None] * (b - a)[:, None]  # (pairs, steps, D)
        images = model.decode(path.reshape(-1, z.shape[1]))
    return save_grid(images, out, nrow=steps)


def encode(run: Run, out: str | Path, split: str = "test") -> Path:
    """Codes of a whole split (posterior means for a VAE) and their labels, as .npz."""
    require(run, "encodes", "encode")
    data = run.split(split)
    codes = encode_split(run, data).numpy()
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
    require(run, "encodes", "plot its latent codes")
    data = run.split(split)
    codes = encode_split(run, data).numpy()
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


def draw_samples(run: Run, n: int, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n model samples (n, C, H, W) from a seeded generator, drawn in batches."""
    require(run, "samples", "draw samples")
    gen = torch.Generator(device=run.device).manual_seed(seed)
    with torch.inference_mode():
        return torch.cat([run.model.sample(min(batch_size, n - i), generator=gen) for i in range(0, n, batch_size)])
