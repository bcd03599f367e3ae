"""What the commands do with a trained run directory: sample, reconstruct, interpolate, encode and
plot the latent space. Each reads only the run directory (and the data its config records, or those
a Python caller passes to load_run) and writes only the file it is asked for. Each first checks the
capability its model class declares (docs/ARCHITECTURE.md, "Capabilities"), so a run of the wrong family
gets one sentence, not a traceback. A vector run's outputs are in the data's own units (the standardiser its
config.json records, undone) and its pictures are scatters (vectordata.save_points), not image grids."""

from __future__ import annotations

import difflib
import io
import itertools
import numbers
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .config import check_seed, shown
from .data import Dataset, DataSplits
from .dataset import Standardiser
from .errors import CheckpointError, GenmodelsError
from .fileio import atomic_write, write_error
from .images import grid_array, save_grid, save_pairs
from .models import GenerativeModel, Model, RunConfig, families_that
from .plots import plot_latent
from .provenance import run_data
from .rundir import RunDir
from .runtime import resolve_device
from .toy import TOYS
from .vectordata import save_points

# The most images one picture of a command holds: a 100 x 100 grid.
MAX_IMAGES = 10_000
# The most samples `sample --out FILE.npy` writes, drawn a batch at a time.
MAX_SAMPLES = 1_000_000


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
        """The data the run was trained on, as config.json records them (shape and fingerprint checked)."""
        return run_data(self.dir, self.config)

    def split(self, name: str) -> Dataset:
        if name not in ("train", "test"):
            raise GenmodelsError(f"Unknown split {name!r}; use train or test.")
        return getattr(self.data, name)

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.model.parameters(), self.model.buffers())).device

    @property
    def vectors(self) -> bool:
        """Whether the run was trained on vector data (N, D) rather than images."""
        return self.config.shape is not None and len(self.config.shape) == 1

    @cached_property
    def standardiser(self) -> Standardiser | None:
        """The standardiser the run's config.json records (vector runs): what turns its outputs into data units."""
        recorded = self.config.data.standardiser
        return None if recorded is None or not self.vectors else Standardiser.from_config(recorded)

    def in_units(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs (or model inputs) in the data's own units: vectors un-standardised; images as they are."""
        return x if self.standardiser is None else self.standardiser.inverse(x)

    def picture(self, points: torch.Tensor, out: Path, title: str, reference: torch.Tensor | None = None) -> Path:
        """A vector run's picture of model-space points (and reference points, model space) in data units."""
        ref = None if reference is None else self.in_units(reference)
        return save_points(self.in_units(points), out, self.config.data.source, ref, title)


def load_run(run_dir: str | Path | RunDir, device: str = "cpu", data: DataSplits | None = None) -> Run:
    """The run in run_dir. data: its data, already loaded or given in memory (checked against the shape and
    fingerprint the run recorded); otherwise Run.data loads what config.json names when first asked."""
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if rd.path.exists() and not rd.path.is_dir():
        raise CheckpointError(f"{rd.path} is a file, not a run directory; pass the --out folder of a training run.")
    model, config = rd.load_model(resolve_device(device))
    run = Run(rd, config, model)
    if data is not None:
        run.data = run_data(rd, config, data)
    return run


def check_count(value, flag: str, high: int, low: int = 1, why: str = "") -> int:
    """value, or a one-sentence error unless it is an integer in low..high (why: what bounds it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise GenmodelsError(f"{flag} must be an integer from {low:,} to {high:,}{why}, got {shown(value)}; "
                             "give one in that range.")
    return int(value)


def output_file(out: str | Path, suffix: str | tuple[str, ...]) -> Path:
    """The file a command writes: a path ending in `suffix` (.png, .npz; or one of several) that is not a folder,
    its folder made if need be; a one-sentence error otherwise. Checked before any work."""
    out = Path(out)
    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    try:  # an OSError here: a folder on the way that cannot be read or made
        if out.is_dir():
            raise GenmodelsError(f"--out {out} is a folder; give the file to write, such as "
                                 f"{out / ('out' + suffixes[0])}.")
        if out.suffix.lower() not in suffixes:
            kinds = " or ".join(suffixes)
            raise GenmodelsError(f"--out {out} must end in {kinds}, the kind of file this command writes; "
                                 f"give e.g. {out.with_name(out.stem + suffixes[0])}.")
        above = next(p for p in out.absolute().parents if p.exists())
        if not above.is_dir():
            raise GenmodelsError(f"--out {out} cannot be written, as {above} is a file, not a folder; "
                                 "choose another path.")
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(out, err, "create the folder of") from None
    return out


def require(run: Run, capability: str, what: str) -> None:
    """A one-sentence error unless the run's model declares `capability` ("encodes" or "samples")."""
    if not getattr(run.model, capability):
        lacks = {"encodes": "has no encoder", "samples": "cannot sample"}[capability]
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} {lacks}, so it cannot {what}; "
                             f"use a run of a family that {capability} ({families_that(capability)}).")


def generative(run: Run) -> GenerativeModel:
    """The run's model as the generative model it is: only those have codes, decode and sample (which of them
    it does, `require` checks)."""
    if not isinstance(run.model, GenerativeModel):
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} is not a generative model; use a run of a "
                             f"family that encodes or samples ({families_that('encodes', 'samples')}).")
    return run.model


def _images(run: Run, split: str, n: int) -> torch.Tensor:
    data = run.split(split)
    return data.batch(slice(0, min(n, len(data)))).to(run.device)


def batched(fn, x: torch.Tensor, batch_size: int = 1000, labels: torch.Tensor | None = None) -> torch.Tensor:
    """fn applied to x (N, ...) in batches under inference mode, results concatenated on the CPU; with labels (N,),
    fn(x batch, its labels) (a conditional model's encode or reconstruct)."""
    with torch.inference_mode():
        return torch.cat([(fn(x[i : i + batch_size]) if labels is None else
                           fn(x[i : i + batch_size], labels[i : i + batch_size])).cpu()
                          for i in range(0, len(x), batch_size)])


def encode_split(run: Run, data: Dataset, batch_size: int = 1000) -> torch.Tensor:
    """Codes of every image of a split, (N, latent_dim) on the CPU."""
    with torch.inference_mode():
        model = generative(run)
        labels = data.labels if model.conditional else None  # a conditional model encodes given each label
        return torch.cat([model.encode_with(data.batch(slice(i, i + batch_size)).to(run.device),
                                            None if labels is None else labels[i : i + batch_size].to(run.device))
                          .cpu() for i in range(0, len(data), batch_size)])


def sample(run: Run, n: int, out: str | Path, seed: int = 0, klass: str | None = None) -> Path:
    """n samples into `out`: a picture (.png: an image grid, or a vector run's scatter) or the numbers themselves
    (.npy: a vector run's samples as float32 in the data's units (n, D); an image run's as uint8 pixels
    (n, C, H, W), 0..255). klass (a conditional run's): the class asked for, an index or a name; "all": a row of
    ceil(n / classes) samples per class, each row labelled; None: classes in the training split's proportions."""
    require(run, "samples", "draw samples")
    array = Path(out).suffix.lower() == ".npy"
    check_count(n, "-n", MAX_SAMPLES if array else MAX_IMAGES,
                why=" (the samples of one file)" if array else " (the images of one grid)")
    check_seed(seed)
    asked = None if klass is None else class_indices(run, klass)
    labels = None if asked is None else torch.tensor(asked, device=run.device).repeat_interleave(
        -(-n // len(asked)) if len(asked) > 1 else n)
    n = n if labels is None else len(labels)
    out = output_file(out, (".png", ".npy"))
    if array:
        drawn = draw_samples(run, n, seed, labels=labels).float()
        values = run.in_units(drawn).numpy() if run.vectors else (drawn * 255).round().clamp(0, 255).to(torch.uint8)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(values))
        atomic_write(out, buffer.getvalue())
        return out
    images = draw_samples(run, n, seed, batch_size=n, labels=labels)  # one batch: the grid's draws as they were
    if asked is not None and len(asked) > 1 and not run.vectors:
        return save_labelled_rows(images, class_names(run), out)
    if run.vectors:
        # Over the toy's own density, else over test points (which need the run's data).
        test = None if run.config.data.source in TOYS else run.data.test.batch(slice(0, MAX_IMAGES))
        return run.picture(images, out, f"{run.config.family}: {n} samples", test)
    return save_grid(images, out)


def reconstruct(run: Run, out: str | Path, n: int = 16, split: str = "test") -> Path:
    """Originals above their reconstructions, row by row (8 images a row): n of them, or the whole split if smaller."""
    require(run, "encodes", "reconstruct")
    check_count(n, "-n", MAX_IMAGES // 2, why=" (each image is shown twice in one grid)")
    run.split(split)  # an unknown split is refused before the output's folder is made
    out = output_file(out, ".png")
    x = _images(run, split, n)
    with torch.inference_mode():
        r = generative(run).reconstruct(x, _labels(run, split, len(x)))  # a conditional model: each image's own
    if run.vectors:
        return run.picture(r, out, f"{run.config.family}: {len(x)} {split} points reconstructed", x)
    return save_pairs(x, r, out)


MIN_NORM = 1e-6  # a code shorter than this has no direction for slerp (float32 squares entries under 4e-23 to 0)
MIN_SINE = 1e-3  # codes at an angle whose sine is under this (near 0 or 180 degrees) have no arc of their own


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b (B, D) at fractions t (T,): (B, T, D). Rows where the arc
    is not defined take the straight line: a code under MIN_NORM has no direction (0/0), and near 0 or 180
    degrees the sine slerp divides by is ~0 (near 0 the arc is the line; near 180 there are many arcs)."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)  # (B, 1)
    cos = ((a * b).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-30)).clamp(-1, 1)
    omega = torch.acos(cos)[:, None]  # (B, 1, 1)
    so = torch.sin(omega)
    arc = ((na > MIN_NORM) & (nb > MIN_NORM))[:, None] & (so > MIN_SINE)  # (B, 1, 1)
    safe = torch.where(arc, so, torch.ones_like(so))
    t = t[None, :, None]
    curve = (torch.sin((1 - t) * omega) / safe) * a[:, None] + (torch.sin(t * omega) / safe) * b[:, None]
    return torch.where(arc, curve, a[:, None] + t * (b - a)[:, None])


def path_between(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, mode: str) -> torch.Tensor:
    """Codes on the way from rows of a to rows of b (B, D) at fractions t (T,): (B, T, D), on the straight
    line (linear) or the arc between them (slerp)."""
    if mode == "slerp":
        return slerp(a, b, t)
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


def interpolate(run: Run, out: str | Path, pairs: int = 8, steps: int = 10, split: str = "test",
                mode: str = "linear", seed: int = 0) -> Path:
    """Each row walks from one code to another and decodes every point on the way.

    Codes come from pairs of held-out images where the model encodes, else from the prior."""
    if mode not in ("linear", "slerp"):
        raise GenmodelsError(f"Unknown interpolation {shown(mode)}; use linear or slerp.")
    model = run.model
    if not model.decodes or not isinstance(model, GenerativeModel):
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} has no latent space to walk; "
                             f"use a run of a family that encodes or samples ({families_that('encodes', 'samples')}).")
    check_count(steps, "--steps", 100, low=2, why=" (both ends of each walk and the points between)")
    check_count(pairs, "--pairs", MAX_IMAGES // steps, why=f" (at most {MAX_IMAGES:,} images in one grid)")
    if model.encodes and 2 * pairs > (held := len(run.split(split))):
        fix = f"give --pairs {held // 2} or fewer" if held >= 2 else "use a run whose data have more images"
        raise GenmodelsError(f"--pairs {pairs} needs {2 * pairs} {split} images but the {split} split holds "
                             f"{held}; {fix}.")
    check_seed(seed)
    out = output_file(out, ".png")
    t = torch.linspace(0, 1, steps, device=run.device)
    with torch.inference_mode():
        gen = torch.Generator(device=run.device).manual_seed(seed)
        if model.encodes:  # a conditional model encodes each image with its own label
            labels = _labels(run, split, 2 * pairs)
            z = model.encode_with(_images(run, split, 2 * pairs), labels)
        else:
            z = model.prior_sample(2 * pairs, generator=gen)
            labels = model.draw_labels(2 * pairs, gen) if model.conditional else None
        path = path_between(z[0::2], z[1::2], t, mode)  # (pairs, steps, D)
        # A conditional model's walk keeps the label of the image (or draw) it starts from.
        rows = None if labels is None else labels[0::2].repeat_interleave(steps)
        images = model.decode_with(path.reshape(-1, z.shape[1]), rows)
    if run.vectors:
        return run.picture(images, out, f"{run.config.family}: {pairs} walks of {steps} decoded points")
    return save_grid(images, out, nrow=steps)


def encode(run: Run, out: str | Path, split: str = "test") -> Path:
    """Codes of a whole split (posterior means for a VAE) and their labels, as .npz."""
    require(run, "encodes", "encode")
    data = run.split(split)
    out = output_file(out, ".npz")  # the name written, as np.savez would append .npz to any other
    codes = encode_split(run, data).numpy()
    buffer = io.BytesIO()
    if data.labels is not None:
        np.savez(buffer, codes=codes, labels=data.labels.cpu().numpy())
    else:
        np.savez(buffer, codes=codes)
    atomic_write(out, buffer.getvalue())
    return out


def latent(run: Run, out: str | Path, split: str = "test", grid: int = 20) -> Path:
    """Scatter of codes coloured by label; a 2-D latent also gets the decoded manifold:
    a grid of z = Phi^-1(u) over the unit square (Kingma & Welling 2013, Fig. 4)."""
    require(run, "encodes", "plot its latent codes")
    data = run.split(split)
    out = output_file(out, ".png")
    codes = encode_split(run, data).numpy()
    labels = data.labels.cpu().numpy() if data.labels is not None else None
    if run.vectors and codes.shape[1] == 2 and run.config.shape and run.config.shape[0] >= 2:
        return _latent_curves(run, codes, labels, out, split, grid)
    manifold = z = None
    if codes.shape[1] == 2 and not run.vectors:  # a vector run's decoded grid is no picture of images
        u = torch.linspace(0.05, 0.95, grid)
        zz = torch.special.ndtri(torch.stack(torch.meshgrid(u, u.flip(0), indexing="xy"), -1).reshape(-1, 2))
        with torch.inference_mode():  # cells of >= 28 px: 8x8 digits drawn 4x, 28x28 images as they are
            manifold = grid_array(generative(run).decode_with(zz.to(run.device), _commonest(run, len(zz))),
                                  nrow=grid, pad=2, min_cell=28)
        z = torch.special.ndtri(u).numpy()  # columns left to right, rows bottom to top
    return plot_latent(codes, labels, out, manifold, title=f"{run.config.family} codes ({split})",
                       manifold_z=z, classes=run.data.classes)


def _commonest(run: Run, n: int) -> torch.Tensor | None:
    """For a conditional model, n labels of its commonest training class: the class its decoded latent grid shows
    (None for any other model)."""
    model = generative(run)
    if not model.conditional:
        return None
    return torch.full((n,), model.commonest_class(), dtype=torch.long, device=run.device)


def _latent_curves(run: Run, codes: np.ndarray, labels: np.ndarray | None, out: Path, split: str,
                   grid: int) -> Path:
    """A vector run's 2-D codes beside the decoder's image of `grid` lines of codes each way, z = Phi^-1(u) for
    u evenly spaced in [0.05, 0.95] (as the image manifold), drawn as curves in the data plane (plots)."""
    from .plots import plot_latent_curves  # imported here: matplotlib is slow to import
    from .vectordata import density_grid

    u = torch.linspace(0.05, 0.95, grid)
    along = torch.special.ndtri(torch.linspace(0.05, 0.95, 100))
    lines = [torch.stack([along, torch.full_like(along, z)], 1) for z in torch.special.ndtri(u)]  # z2 fixed
    lines += [torch.stack([torch.full_like(along, z), along], 1) for z in torch.special.ndtri(u)]  # z1 fixed
    with torch.inference_mode():
        codes_on_lines = torch.cat(lines).to(run.device)
        decoded = run.in_units(generative(run).decode_with(codes_on_lines, _commonest(run, len(codes_on_lines)))).cpu()
    curves = [c.numpy() for c in decoded.split(len(along))]
    points = decoded.double().numpy()
    density = density_grid(run.config.data.source, points[:, :2]) if run.config.shape == (2,) else None
    reference = None if density is not None else run.in_units(run.split(split).batch(slice(0, 2000))).numpy()
    return plot_latent_curves(codes, labels, curves, out, reference=reference, density=density,
                              title=f"{run.config.family} codes ({split})", classes=run.data.classes)


def draw_samples(run: Run, n: int, seed: int = 0, batch_size: int = 1000,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """n model samples (n, C, H, W) from a seeded generator, drawn in batches; a conditional model's of the classes
    labels (n,) asks for (None: in the training split's proportions)."""
    require(run, "samples", "draw samples")
    check_seed(seed)
    gen = torch.Generator(device=run.device).manual_seed(seed)
    with torch.inference_mode():
        model = generative(run)
        # labels= only where asked for: an unconditional model's sample(n, generator) is called as it always was
        return torch.cat([model.sample(min(batch_size, n - i), generator=gen,
                                       **({} if labels is None else {"labels": labels[i : i + batch_size]}))
                          for i in range(0, n, batch_size)])


def _labels(run: Run, split: str, n: int) -> torch.Tensor | None:
    """The labels of the first n images of a split, for a conditional model (None for any other)."""
    labels = run.split(split).labels if generative(run).conditional else None
    return None if labels is None else labels[:n].to(run.device)


def class_names(run: Run) -> list[str]:
    """A conditional run's class names in label order: the data's, or the indices where the data name none."""
    classes = generative(run).classes
    names = run.data.classes
    return list(names) if names and len(names) == classes else [str(k) for k in range(classes)]


def class_indices(run: Run, spec: str) -> list[int]:
    """The classes `--class spec` asks for: "all" (every class), an index, or a class name (any case); a one-sentence
    error for a run that is not conditional or a class it does not have, with the nearest name ("did you mean")."""
    model = generative(run)
    if not model.conditional:
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} is not conditional, so it cannot sample a "
                             "class; train one with --conditional, or drop --class.")
    if spec == "all":
        return list(range(model.classes))
    if spec.strip().lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < model.classes:
            raise GenmodelsError(f"Class {index} is outside this run's classes 0..{model.classes - 1}; give one of "
                                 "those, a class name, or all.")
        return [index]
    names = class_names(run)
    lowered = [name.lower() for name in names]
    if spec.lower() in lowered:
        return [lowered.index(spec.lower())]
    near = difflib.get_close_matches(spec.lower(), lowered, n=1)
    hint = f"did you mean {names[lowered.index(near[0])]!r}?" if near else f"use one of {', '.join(names)}."
    raise GenmodelsError(f"This run has no class {shown(spec)} (give an index 0..{model.classes - 1}, a name, or "
                         f"all); {hint}")


def save_labelled_rows(images: torch.Tensor, names: list[str], out: Path) -> Path:
    """Images (classes x per, C, H, W), one row per class in label order, each row named on its left, as a PNG."""
    from PIL import Image, ImageDraw

    per = len(images) // len(names)
    grid = Image.fromarray(grid_array(images, nrow=per)).convert("RGB")
    margin = 12 + 7 * max(len(name) for name in names)
    picture = Image.new("RGB", (grid.width + margin, grid.height), "white")
    picture.paste(grid, (margin, 0))
    draw, row = ImageDraw.Draw(picture), (grid.height - 1) / len(names)
    for k, name in enumerate(names):
        draw.text((4, int(k * row + row / 2) - 5), name, fill="black")
    png = io.BytesIO()
    picture.save(png, format="PNG")
    atomic_write(out, png.getvalue(), parents=True)
    return out
