"""Metrics read off the pixels themselves, no feature network needed: how varied a set of images is
and how sharp its images are, each as a ratio to the same figure for real images (1: like the data).

A ratio to the real images' figure has no meaning where that figure is 0 (identical real images have no
spread, flat ones no edges), nor where it is float32's rounding of such images (MIN_SPREAD, MIN_LAPLACIAN_VARIANCE):
`diversity` and `sharpness` then give None, which callers leave out of what they record, rather than divide by
zero or by noise. Nearly identical 8-bit images (one pixel one level apart) stay well above both."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Below this diversity the samples are near copies of a few images: training warns, and evaluation
# without a feature network calls the run collapsed.
LOW_DIVERSITY = 0.3

# Reference figures below these are float32's rounding of pixels in [0, 1] (a step of 6e-8), not structure: 8-bit
# images one level apart in one pixel of one image in a thousand give 8e-6 and 5e-10.
MIN_SPREAD, MIN_LAPLACIAN_VARIANCE = 1e-6, 1e-12

# The 4-neighbour discrete Laplacian, d2/dx2 + d2/dy2.
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean Euclidean distance between the n(n-1)/2 pairs of distinct images (n, ...), in pixel space."""
    flat = images.flatten(1).double()
    n = flat.shape[0]
    if n < 2:
        raise ValueError("the mean pairwise distance needs at least two images")
    return (torch.pdist(flat).sum() / (n * (n - 1) / 2)).item()


def diversity(samples: torch.Tensor, real: torch.Tensor) -> float | None:
    """Mean pairwise distance of the samples over that of real images: about 1 for samples as varied as
    the data, 0 when every sample is the same image (a collapsed generator). None where it is undefined:
    fewer than two images on either side, or real images all identical (no spread to compare with: MIN_SPREAD)."""
    if len(samples) < 2 or len(real) < 2:
        return None
    spread = mean_pairwise_distance(real)
    return mean_pairwise_distance(samples) / spread if spread >= MIN_SPREAD else None


def laplacian_fits(images: torch.Tensor) -> bool:
    """Whether images (B, C, H, W) are large enough for the 3x3 Laplacian (and so for `sharpness`)."""
    return images.dim() == 4 and min(images.shape[-2:]) >= 3


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Per image (B, C, H, W) -> (B,): the variance over pixels and channels of its Laplacian, taken where
    the 3x3 kernel fits (no padding). The focus measure of Pech-Pacheco et al. 2000: blur lowers it."""
    if not laplacian_fits(images):
        raise ValueError(f"the Laplacian needs images (B, C, H, W) of at least 3x3 pixels, got {tuple(images.shape)}")
    c = images.shape[1]
    kernel = LAPLACIAN.to(images.device, torch.float64).expand(c, 1, 3, 3)
    # 256 images at a time: the float64 convolution unfolds 9 copies of its input (97 MB for 2000 28x28 images).
    return torch.cat([F.conv2d(chunk.double(), kernel, groups=c).flatten(1).var(dim=1, unbiased=False)
                      for chunk in images.split(256)])


def sharpness(images: torch.Tensor, real: torch.Tensor) -> float | None:
    """Mean Laplacian variance of `images` over that of `real` images: 1 is as sharp as the data, below
    1 blurrier, above 1 noisier or with harder edges than the data. None where it is undefined: no images on
    either side, or real images without edges (every Laplacian zero, up to MIN_LAPLACIAN_VARIANCE: constant or
    linear-gradient images)."""
    if not len(images) or not len(real):
        return None
    reference = laplacian_variance(real).mean().item()
    return laplacian_variance(images).mean().item() / reference if reference >= MIN_LAPLACIAN_VARIANCE else None
