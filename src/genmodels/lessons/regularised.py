"""Lessons on regularised autoencoders: an overcomplete one copies its input unless regularised
(`overcomplete-copies`), a denoising one projects corrupted images back (`denoising-projects`), the contractive
penalty flattens the encoder (`contractive-flattens`), the sparsity penalties give sparse codes (`sparse-codes`)."""

from __future__ import annotations

from typing import Any

import torch

from ..models import AutoEncoder
from .lesson import Context, Lesson, Outcome
from .pictures import image_rows, line_plot

TRAIN = {"epochs": 100, "batch_size": 64, "lr": 2e-3}


def _ae(ctx: Context, name: str, model: dict[str, Any]) -> torch.nn.Module:
    return ctx.train(name, AutoEncoder.family, model, TRAIN).model.eval()


def _errors(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error of each image's reconstruction against `target` (x itself by default), summed over pixels."""
    with torch.no_grad():
        rec = model.reconstruct(x)  # type: ignore[operator]  # an encoding model's reconstruct
    return (rec.double() - (x if target is None else target).double()).pow(2).flatten(1).sum(1)


# -- 3. overcomplete-copies ---------------------------------------------------------------------------------------

WIDE: dict[str, Any] = {"latent_dim": 128, "hidden": [], "code_activation": "sigmoid"}  # twice the 64 pixels of a digit
REGULARISED: dict[str, dict[str, Any]] = {
    "weight-decay": {"weight_decay": 1e-3}, "denoising": {"corrupt": ["mask:0.25"]},
    "contractive": {"contractive": 0.1}, "sparse": {"sparse_kl": 0.5, "sparse_rho": 0.05}}
MIN_FACTOR = 2.0


def _off_data(x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Inputs that are not digits: uniform noise, and the test digits with their pixels shuffled (one permutation
    per image)."""
    gen = torch.Generator().manual_seed(seed)
    flat = x.flatten(1)
    order = torch.stack([torch.randperm(flat.shape[1], generator=gen) for _ in range(len(x))])
    return {"noise": torch.rand(x.shape, generator=gen), "shuffled": flat.gather(1, order).reshape(x.shape)}


def overcomplete_copies(ctx: Context) -> Outcome:
    x = ctx.images()
    off = _off_data(x, ctx.seed)
    models = {"plain": _ae(ctx, "plain", WIDE), **{k: _ae(ctx, k, {**WIDE, **v}) for k, v in REGULARISED.items()}}
    numbers: dict[str, Any] = {"code_size": WIDE["latent_dim"], "pixels": x[0].numel()}
    ratios: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        on = float(_errors(model, x).mean())
        ratios[name] = {kind: float(_errors(model, v).mean()) / on for kind, v in off.items()}
        numbers[f"{name}_test_error"] = round(on, 4)
        numbers.update({f"{name}_{kind}_ratio": round(r, 3) for kind, r in ratios[name].items()})
    short = [f"{name} on {kind} ({ratios[name][kind]:.1f} against {ratios['plain'][kind]:.1f})"
             for name in REGULARISED for kind in off if ratios[name][kind] < MIN_FACTOR * ratios["plain"][kind]]
    shown = torch.cat([off["noise"][:4], off["shuffled"][:4]])
    with torch.no_grad():
        rows = [shown] + [m.reconstruct(shown).clamp(0, 1) for m in models.values()]  # type: ignore[operator]
    picture = image_rows(rows, ctx.picture("off-data"))
    others = [r for name in REGULARISED for r in ratios[name].values()]
    reason = (f"the plain overcomplete autoencoder's off-data error is {ratios['plain']['noise']:.1f} (noise) and "
              f"{ratios['plain']['shuffled']:.1f} (shuffled) times its test error; the regularised ones' ratios lie "
              f"between {min(others):.1f} and {max(others):.1f}" +
              ("" if not short else f", under {MIN_FACTOR:g} times the plain one's for {len(short)} of "
               f"{len(others)} (model, input) pairs"))
    return Outcome(numbers, not short, reason,
                   [("off-data inputs (top: 4 noise, 4 shuffled digits), then the reconstructions of the plain, "
                     f"{', '.join(REGULARISED)} autoencoders, a row each", picture)])


# -- 4. denoising-projects ---------------------------------------------------------------------------------------

MID = {"latent_dim": 32, "hidden": [128]}
NOISE = (0.1, 0.2, 0.4)


def denoising_projects(ctx: Context) -> Outcome:
    x = ctx.images()
    plain, dae = _ae(ctx, "plain", MID), _ae(ctx, "denoising", {**MID, "corrupt": ["gauss:0.2"]})
    gen = torch.Generator().manual_seed(ctx.seed)
    left, by_plain, by_dae, rows = [], [], [], [x[:8]]
    for sigma in NOISE:
        noisy = x + sigma * torch.randn(x.shape, generator=gen)
        left.append(float((noisy - x).pow(2).flatten(1).sum(1).mean()))
        by_plain.append(float(_errors(plain, noisy, x).mean()))
        by_dae.append(float(_errors(dae, noisy, x).mean()))
        with torch.no_grad():
            rows += [noisy[:8].clamp(0, 1), dae.reconstruct(noisy[:8]).clamp(0, 1)]  # type: ignore[operator]
    fails = [f"sigma {s:g}" for s, a, b, c in zip(NOISE, left, by_plain, by_dae) if not (c < a and c < b)]
    plot = line_plot(ctx.picture("distance"), NOISE, {"the corruption": (left, None), "plain": (by_plain, None),
                                                       "denoising": (by_dae, None)},
                     "noise sigma", "squared distance to the clean image")
    grid = image_rows(rows, ctx.picture("denoised"))
    numbers = {"noise_sigma": list(NOISE), "corrupted_distance": [round(v, 3) for v in left],
               "plain_distance": [round(v, 3) for v in by_plain], "denoising_distance": [round(v, 3) for v in by_dae]}
    reason = ("at every noise level the denoising autoencoder's output is closer to the clean image than both the "
              "corruption and the plain autoencoder's output" if not fails else
              f"the denoising autoencoder is not closer than both at {', '.join(fails)}")
    return Outcome(numbers, not fails, reason, [("squared distance to the clean test images", plot),
                                                ("clean (top), then per noise level the corrupted images above the "
                                                 "denoising autoencoder's outputs", grid)])


# -- 5. contractive-flattens ---------------------------------------------------------------------------------------

ONE_LAYER = {"latent_dim": 32, "hidden": [], "code_activation": "sigmoid"}
JITTER = 0.05


def _jacobian_norms(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F of the encoder at each image, by automatic differentiation."""
    def encode(v: torch.Tensor) -> torch.Tensor:
        return model.encode(v.unsqueeze(0)).squeeze(0)  # type: ignore[operator]  # an encoding model's encode

    jac = torch.func.vmap(torch.func.jacrev(encode))(x)
    return jac.flatten(1).norm(dim=1).detach()


def contractive_flattens(ctx: Context) -> Outcome:
    x = ctx.images()
    models = {"plain": _ae(ctx, "plain", ONE_LAYER), "contractive": _ae(ctx, "contractive",
                                                                         {**ONE_LAYER, "contractive": 0.1})}
    gen = torch.Generator().manual_seed(ctx.seed)
    jitter = JITTER * torch.randn(x.shape, generator=gen)
    norms, moves = {}, {}
    for name, model in models.items():
        norms[name] = _jacobian_norms(model, x)
        with torch.no_grad():
            moves[name] = (model.encode(x + jitter) - model.encode(x)).norm(dim=1)  # type: ignore[operator]
    plot = line_plot(ctx.picture("jacobian"), list(range(1, len(x) + 1)),
                     {f"{k} (sorted)": (v.sort().values.tolist(), None) for k, v in norms.items()},
                     "test image (sorted by the norm)", "||J_f(x)||_F")
    numbers = {f"{k}_mean_jacobian_norm": round(float(v.mean()), 4) for k, v in norms.items()}
    numbers.update({f"{k}_mean_code_move": round(float(v.mean()), 4) for k, v in moves.items()})
    numbers["input_noise_sigma"] = JITTER
    flatter = norms["contractive"].mean() < norms["plain"].mean()
    steadier = moves["contractive"].mean() < moves["plain"].mean()
    reason = (f"mean ||J_f(x)||_F {float(norms['contractive'].mean()):.3f} (contractive) against "
              f"{float(norms['plain'].mean()):.3f} (plain); codes move {float(moves['contractive'].mean()):.4f} "
              f"against {float(moves['plain'].mean()):.4f} under noise of sigma {JITTER:g}")
    return Outcome(numbers, bool(flatter and steadier), reason, [("the encoder's Jacobian norm at each test image",
                                                                  plot)])


# -- 6. sparse-codes -----------------------------------------------------------------------------------------------

SPARSE: dict[str, Any] = {"latent_dim": 100, "hidden": [128]}
RHO, NEAR_ZERO, MIN_GAIN = 0.05, 0.01, 0.2


def _codes(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.encode(x)  # type: ignore[operator]  # an encoding model's encode


def sparse_codes(ctx: Context) -> Outcome:
    x = ctx.images()
    sig, relu = {**SPARSE, "code_activation": "sigmoid"}, {**SPARSE, "code_activation": "relu"}
    codes = {"plain-sigmoid": _codes(_ae(ctx, "plain-sigmoid", sig), x),
             "kl": _codes(_ae(ctx, "kl", {**sig, "sparse_kl": 0.5, "sparse_rho": RHO}), x),
             "plain-relu": _codes(_ae(ctx, "plain-relu", relu), x),
             "l1": _codes(_ae(ctx, "l1", {**relu, "sparse_l1": 0.05}), x)}
    means = {k: float(v.mean()) for k, v in codes.items()}
    zeros = {k: float((v.abs() < NEAR_ZERO).double().mean()) for k, v in codes.items()}
    kl_ok = RHO / 2 <= means["kl"] <= 2 * RHO < means["plain-sigmoid"]
    l1_ok = zeros["l1"] >= zeros["plain-relu"] + MIN_GAIN
    plot = line_plot(ctx.picture("activations"), list(range(1, SPARSE["latent_dim"] + 1)),
                     {f"{k}: mean activation per unit (sorted)": (v.mean(0).sort(descending=True).values.tolist(),
                                                                  None) for k, v in codes.items()},
                     "code unit (sorted)", "mean activation on the test images", lines={"rho": RHO})
    numbers = {"rho": RHO, **{f"{k}_mean_activation": round(v, 4) for k, v in means.items()},
               **{f"{k}_near_zero_share": round(v, 4) for k, v in zeros.items()}}
    reason = (f"mean activation {means['kl']:.3f} with the KL penalty (rho {RHO:g}) against "
              f"{means['plain-sigmoid']:.3f} without; {zeros['l1']:.0%} of activations near zero with the L1 "
              f"penalty against {zeros['plain-relu']:.0%} without")
    return Outcome(numbers, kl_ok and l1_ok, reason, [("each code unit's mean activation", plot)])


LESSONS = (
    Lesson("overcomplete-copies",
           "An overcomplete autoencoder without regularisation drifts toward the identity, reconstructing inputs "
           "that are not digits almost as well as digits; regularised, it reconstructs them much worse.",
           "Bengio, Courville & Vincent 2013, Representation learning: a review and new perspectives, section 7",
           f"Each regularised autoencoder's error on off-data inputs over its error on test digits is at least "
           f"{MIN_FACTOR:g} times the plain one's, for uniform noise and for pixel-shuffled digits.",
           f"Train autoencoders with a {WIDE['latent_dim']}-unit sigmoid code from the 64 pixels: plain, with "
           "weight decay, masking noise, the contractive penalty, the KL sparsity penalty; reconstruct test "
           "digits, uniform noise and shuffled digits.",
           overcomplete_copies, seconds=35),
    Lesson("denoising-projects",
           "A denoising autoencoder maps corrupted images back toward the data: closer to the clean image than "
           "the corruption left it, and closer than a plain autoencoder does.",
           "Vincent et al. 2008, Extracting and composing robust features with denoising autoencoders",
           f"At each Gaussian noise level {', '.join(map(str, NOISE))}, the denoising autoencoder's output is "
           "closer (squared error) to the clean test image than the corrupted image and than a plain "
           "autoencoder's output.",
           "Train a plain and a denoising (Gaussian noise, sigma 0.2) autoencoder of the same size (code 32, one "
           "hidden layer of 128); corrupt the test images and measure the distances.",
           denoising_projects, seconds=12),
    Lesson("contractive-flattens",
           "The contractive penalty makes the encoder flat around the data: a smaller Jacobian, codes that move "
           "less under small input noise.",
           "Rifai et al. 2011, Contractive auto-encoders",
           "The contractive autoencoder's mean ||J_f(x)||_F over the test images and its mean code movement under "
           f"Gaussian input noise of sigma {JITTER:g} are both below a plain autoencoder's of the same size.",
           "Train a plain and a contractive (lambda 0.1) autoencoder with one sigmoid layer of 32 units; "
           "differentiate each encoder at every test image.",
           contractive_flattens, seconds=8),
    Lesson("sparse-codes",
           "Sparsity penalties give sparse codes: the KL penalty holds each unit's mean activation near rho, the "
           "L1 penalty sets most activations to zero.",
           "Ng 2011, Sparse autoencoder (CS294A lecture notes); Lee, Ekanadham & Ng 2008",
           f"The KL-penalised code's mean activation lies within [rho/2, 2 rho] (rho {RHO:g}) while the plain "
           f"sigmoid code's is above 2 rho; the L1-penalised ReLU code has at least {MIN_GAIN:.0%} more "
           f"activations below {NEAR_ZERO:g} than the plain ReLU code.",
           "Train four autoencoders with a 100-unit code after a hidden layer of 128: sigmoid plain and with the "
           "KL penalty (beta 0.5), ReLU plain and with the L1 penalty (0.05); encode the test images.",
           sparse_codes, seconds=35),
)
