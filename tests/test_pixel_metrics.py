"""Sharpness and diversity, the pixel-space metrics, against hand-worked examples; the collapse verdict."""

import math

import pytest
import torch

from genmodels.evaluation import collapse_verdict
from genmodels.metrics import diversity, laplacian_variance, mean_pairwise_distance, sharpness


def test_laplacian_variance_of_one_bright_pixel_by_hand():
    # One lit pixel in the middle of a 5x5 image. Where the 3x3 kernel fits (the inner 3x3), the Laplacian
    # is -4 at the pixel, 1 at its four neighbours and 0 at the corners: mean 0, variance (4 * 1 + 16) / 9.
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0
    assert laplacian_variance(img).item() == pytest.approx(20 / 9)
    assert laplacian_variance(torch.full((2, 1, 5, 5), 0.7)).tolist() == [0.0, 0.0]  # flat: no edges
    # A linear ramp has zero second derivative everywhere.
    ramp = torch.arange(6.0).repeat(6, 1).view(1, 1, 6, 6)
    assert laplacian_variance(ramp).item() == pytest.approx(0.0)


def test_sharpness_is_one_for_the_data_and_falls_with_blur():
    g = torch.Generator().manual_seed(0)
    real = (torch.rand(50, 1, 16, 16, generator=g) > 0.5).float()
    assert sharpness(real, real) == pytest.approx(1.0)
    blur = torch.nn.functional.avg_pool2d(real, 3, stride=1, padding=1)
    assert sharpness(blur, real) < 0.3
    # Channels: a colour image is measured per channel, pooled.
    colour = torch.rand(4, 3, 8, 8, generator=g)
    assert laplacian_variance(colour).shape == (4,)
    with pytest.raises(ValueError, match="3x3"):
        laplacian_variance(torch.rand(2, 1, 2, 2))


def test_mean_pairwise_distance_and_diversity_by_hand():
    # Three 2-pixel images at (0,0), (3,0), (0,4): distances 3, 4 and 5, mean 4.
    imgs = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]).view(3, 1, 1, 2)
    assert mean_pairwise_distance(imgs) == pytest.approx(4.0)
    assert diversity(imgs, imgs) == pytest.approx(1.0)
    same = imgs[:1].expand(5, -1, -1, -1)
    assert diversity(same, imgs) == 0.0  # a collapsed generator: every sample the same image
    assert diversity(imgs * 0.5, imgs) == pytest.approx(0.5)


def test_collapse_verdict_from_classes_and_recall_or_else_diversity():
    uniform = [0.1] * 10
    ok = {"class_histogram": uniform, "class_entropy": math.log(10), "recall": 0.4, "diversity": 0.9}
    assert collapse_verdict(ok) == {"collapsed": False}
    one_class = {**ok, "class_histogram": [1.0] + [0.0] * 9, "class_entropy": 0.0}
    assert collapse_verdict(one_class) == {"collapsed": True}
    assert collapse_verdict({**ok, "recall": 0.01}) == {"collapsed": True}  # covers almost none of the data
    # Without a feature network the samples' diversity decides.
    assert collapse_verdict({"diversity": 0.05}) == {"collapsed": True}
    assert collapse_verdict({"diversity": 0.8}) == {"collapsed": False}
    assert collapse_verdict({}) == {}
