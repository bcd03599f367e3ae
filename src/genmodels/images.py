"""Image grids as PNG files, written with Pillow."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .fileio import atomic_write


def grid_array(images: torch.Tensor, nrow: int | None = None, pad: int = 1, min_cell: int = 32) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> one uint8 picture (rows, cols[, 3]), cells upscaled to >= min_cell px."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol_rows = math.ceil(n / nrow)
    scale = max(1, math.ceil(min_cell / max(h, w)))
    if scale > 1:  # nearest-neighbour upscaling keeps 8x8 digits crisp instead of blurred
        images = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
        h, w = h * scale, w * scale
    canvas = torch.ones(c, ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top: top + h, left: left + w] = images[i]
    arr = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[..., 0] if c == 1 else arr


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write images (N, C, H, W) in [0, 1] as a grid PNG, nrow images per row (square by default), atomically."""
    path = Path(path)
    png = io.BytesIO()
    Image.fromarray(grid_array(images, nrow)).save(png, format="PNG")
    atomic_write(path, png.getvalue(), parents=True)
    return path


def save_pairs(originals: torch.Tensor, reconstructions: torch.Tensor, path: str | Path, per_row: int = 8) -> Path:
    """Originals above their reconstructions, `per_row` images a row, as one grid PNG."""
    per_row = min(per_row, originals.shape[0])
    rows = []
    for i in range(0, originals.shape[0], per_row):
        rows += [originals[i : i + per_row], reconstructions[i : i + per_row]]
    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t, torch.ones(per_row - t.shape[0], *t.shape[1:], device=t.device)])

    return save_grid(torch.cat([pad(t) for t in rows]), path, nrow=per_row)
