"""Lessons on autoencoders against PCA: a linear autoencoder spans PCA's subspace (`linear-ae-spans-pca`), a
non-linear one reconstructs better at the same code size (`nonlinear-beats-pca`)."""

from __future__ import annotations

from typing import cast

import torch

from ..models import PCA, AutoEncoder
from .lesson import Context, Lesson, Outcome
from .measures import principal_angles
from .pictures import image_rows, line_plot, stretched

CODE = 8
MAX_ANGLE = 5.0  # degrees
LINEAR = {"latent_dim": CODE, "hidden": [], "code_activation": "linear", "loss": "mse"}
# Measured on digits: 300 epochs of Adam at 1e-2 with a cosine schedule bring the largest angle under a degree;
# the 8th and 9th eigenvalues are close (247 and 227), so the last direction is the slow one.
LINEAR_TRAIN = {"epochs": 300, "batch_size": 64, "lr": 1e-2, "lr_schedule": "cosine"}


def _decoder_basis(model: torch.nn.Module, k: int) -> torch.Tensor:
    """The columns of a linear decoder, (D, k): g(e_i) - g(0), read through `decode` whatever its layers."""
    with torch.no_grad():
        codes = torch.cat([torch.zeros(1, k), torch.eye(k)])
        out = model.decode(codes).flatten(1).double()  # type: ignore[operator]  # an encoding model's decode
    return (out[1:] - out[:1]).T


def _basis_picture(ctx: Context, pca: torch.Tensor, dec: torch.Tensor, shape: tuple[int, ...]):
    """PCA's components, the decoder's columns, and those columns rotated onto PCA's basis (orthogonal
    Procrustes): the third row matches the first when the subspaces agree."""
    q, _ = torch.linalg.qr(dec)
    u, _, vt = torch.linalg.svd(q.T @ pca)
    rotated = q @ (u @ vt)
    rows = [stretched(m.T.reshape(-1, *shape)) for m in (pca, dec, rotated)]
    return image_rows(rows, ctx.picture("bases"))


def linear_ae_spans_pca(ctx: Context) -> Outcome:
    ae = ctx.train("linear-ae", AutoEncoder.family, LINEAR, LINEAR_TRAIN).model
    pca = cast(PCA, ctx.train(PCA.family, PCA.family, {"latent_dim": CODE}, {"epochs": 1}).model)
    components = pca.components.double().T  # PCA's (k, D) buffer
    angles = principal_angles(_decoder_basis(ae, CODE), components)
    largest = float(angles.max())
    picture = _basis_picture(ctx, components, _decoder_basis(ae, CODE), ctx.data.shape)
    numbers = {"code_size": CODE, "principal_angles_degrees": [round(float(a), 3) for a in angles],
               "largest_angle_degrees": round(largest, 3)}
    reason = (f"the largest principal angle between the decoder's columns and PCA's top {CODE} components is "
              f"{largest:.2f} degrees ({'under' if largest < MAX_ANGLE else 'not under'} {MAX_ANGLE:g})")
    return Outcome(numbers, largest < MAX_ANGLE, reason,
                   [("PCA's components (top), the decoder's columns (middle), those columns rotated onto PCA's "
                     "basis (bottom)", picture)])


SIZES = (2, 4, 8, 16, 32)
NONLINEAR_TRAIN = {"epochs": 100, "batch_size": 64, "lr": 2e-3}


def _test_error(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Squared error summed over pixels, averaged over the test images."""
    with torch.no_grad():
        rec = model.reconstruct(x)  # type: ignore[operator]  # an encoding model's reconstruct
    return float((rec.double() - x.double()).pow(2).flatten(1).sum(1).mean())


def nonlinear_beats_pca(ctx: Context) -> Outcome:
    x = ctx.images()
    ae_err, pca_err = [], []
    for k in SIZES:
        ae = ctx.train(f"ae-{k}", AutoEncoder.family, {"latent_dim": k, "hidden": [128]}, NONLINEAR_TRAIN).model
        pca = ctx.train(f"pca-{k}", PCA.family, {"latent_dim": k}, {"epochs": 1}).model
        ae_err.append(_test_error(ae, x))
        pca_err.append(_test_error(pca, x))
    picture = line_plot(ctx.picture("error"), SIZES, {"autoencoder (one hidden layer of 128)": (ae_err, None),
                                                       "PCA": (pca_err, None)},
                        "code size", "test squared error per image", log_x=True)
    lost = [k for k, a, p in zip(SIZES, ae_err, pca_err) if a >= p]
    numbers = {"code_sizes": list(SIZES), "autoencoder_test_error": [round(v, 4) for v in ae_err],
               "pca_test_error": [round(v, 4) for v in pca_err]}
    reason = ("the autoencoder's test error is below PCA's at every code size" if not lost else
              f"PCA's test error is lower or equal at code size {', '.join(map(str, lost))}")
    return Outcome(numbers, not lost, reason, [("test reconstruction error against code size", picture)])


LESSONS = (
    Lesson("linear-ae-spans-pca",
           "A linear autoencoder (no non-linearity, squared error) with a k-dimensional code learns the span of "
           "PCA's top k components, not the components themselves.",
           "Baldi & Hornik 1989, Neural networks and principal component analysis",
           f"The largest principal angle between the decoder's column space and PCA's top-{CODE} subspace is "
           f"under {MAX_ANGLE:g} degrees at k = {CODE}.",
           f"Train a linear autoencoder (code {CODE}, no hidden layer, squared error) and PCA with {CODE} "
           "components on the training images; compare the decoder's columns with PCA's components.",
           linear_ae_spans_pca, seconds=12),
    Lesson("nonlinear-beats-pca",
           "At equal code size a non-linear autoencoder reconstructs held-out images better than PCA.",
           "Hinton & Salakhutdinov 2006, Reducing the dimensionality of data with neural networks",
           "The autoencoder's test squared error is below PCA's at every code size 2, 4, 8, 16 and 32.",
           "Train an autoencoder with one hidden layer of 128 ReLU units and PCA at each code size; measure "
           "the squared reconstruction error on the test images.",
           nonlinear_beats_pca, seconds=25),
)
