"""Lessons judged on samples by the feature network: the VAE's latent space is smooth (`vae-latent-is-smooth`), a
GAN needs no labels to generate every class (`gans-need-no-labels`), Algorithm 1's k (`k-steps`), and GAN samples
are sharper than a VAE's (`gans-are-sharper`)."""

from __future__ import annotations

import math
from typing import Any, cast

import torch

from ..evaluation import feature_distances, pixel_quality
from ..features import FeatureNetwork
from ..metrics import class_entropy, class_histogram
from ..models import GAN, VAE, AutoEncoder, GenerativeModel
from ..report.catalog import metric
from .lesson import Context, Lesson, Outcome
from .pictures import image_rows, line_plot

CODE = {"latent_dim": 8, "hidden": [128]}
TRAIN = {"epochs": 100, "batch_size": 64, "lr": 2e-3}
GAN_TRAIN = {"epochs": 100, "batch_size": 64}  # the family's own learning rates
SAMPLES = 1000


def _confidence(net: FeatureNetwork, images: torch.Tensor) -> torch.Tensor:
    """The feature classifier's probability of its predicted class, per image."""
    with torch.inference_mode():
        return torch.softmax(net.model.logits(images.to(net.device)), 1).max(1).values.cpu()


def _model(ctx: Context, name: str, family: str, model: dict[str, Any], train: dict[str, Any]) -> GenerativeModel:
    return cast(GenerativeModel, ctx.train(name, family, model, train).model.eval())  # an image model


# -- 10. vae-latent-is-smooth ---------------------------------------------------------------------------------------

PAIRS, STEPS, MIN_KEPT = 32, 8, 0.9


def _walks(model: GenerativeModel, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Decoded straight lines between codes a and b (PAIRS, D): (STEPS, PAIRS, C, H, W), both ends included."""
    t = torch.linspace(0, 1, STEPS).view(STEPS, 1, 1)
    with torch.no_grad():
        return model.decode(((1 - t) * a + t * b).flatten(0, 1)).view(STEPS, len(a), *model.shape)


def vae_latent_is_smooth(ctx: Context) -> Outcome:
    net, x = ctx.features(), ctx.images()
    vae = _model(ctx, VAE.family, VAE.family, CODE, TRAIN)
    ae = _model(ctx, AutoEncoder.family, AutoEncoder.family, CODE, TRAIN)
    gen = torch.Generator().manual_seed(ctx.seed)
    with torch.no_grad():
        codes = ae.encode(x).double()
        fitted = torch.distributions.MultivariateNormal(codes.mean(0), torch.cov(codes.T)
                                                        + 1e-6 * torch.eye(codes.shape[1], dtype=torch.float64))
        torch.manual_seed(ctx.seed)
        drawn = {"vae": vae.sample(SAMPLES, gen), "ae": ae.decode(fitted.sample((SAMPLES,)).float())}
    numbers: dict[str, Any] = {"test_images_mean_confidence": round(float(_confidence(net, x).mean()), 4)}
    for name, images in drawn.items():
        numbers[f"{name}_prior_mean_confidence"] = round(float(_confidence(net, images).mean()), 4)
    pairs = torch.randperm(len(x), generator=gen)[: 2 * PAIRS].view(2, PAIRS)
    with torch.no_grad():
        ends = vae.encode(x[pairs[0]]), vae.encode(x[pairs[1]])
    walks = _walks(vae, *ends)
    sure = _confidence(net, walks.flatten(0, 1)).view(STEPS, PAIRS)
    at_ends, between = float(sure[[0, -1]].mean()), float(sure[1:-1].mean())
    numbers.update({"vae_walk_ends_mean_confidence": round(at_ends, 4),
                    "vae_walk_between_mean_confidence": round(between, 4)})
    better = numbers["vae_prior_mean_confidence"] > numbers["ae_prior_mean_confidence"]
    smooth = between >= MIN_KEPT * at_ends
    picture = image_rows([drawn["vae"][:10], drawn["ae"][:10], *walks[:, :3].permute(1, 0, 2, 3, 4)],
                         ctx.picture("latent"))
    reason = (f"the feature network's mean confidence is {numbers['vae_prior_mean_confidence']:.3f} on the VAE's "
              f"prior samples against {numbers['ae_prior_mean_confidence']:.3f} on the plain autoencoder's "
              f"({numbers['test_images_mean_confidence']:.3f} on test images); along walks between test codes "
              f"{between:.3f} in between against {at_ends:.3f} at the ends")
    return Outcome(numbers, better and smooth, reason,
                   [("prior samples of the VAE (top) and of the autoencoder (second row), then three VAE walks "
                     "between test codes", picture)])


# -- 11. gans-need-no-labels ------------------------------------------------------------------------------------------

MIN_SHARE, MIN_ENTROPY = 0.03, 0.9


def gans_need_no_labels(ctx: Context) -> Outcome:
    net = ctx.features()
    gan = _model(ctx, GAN.family, GAN.family, {}, GAN_TRAIN)
    with torch.no_grad():
        samples = gan.sample(SAMPLES, torch.Generator().manual_seed(ctx.seed))
    classes = net.classes
    histogram = class_histogram(net.predict(samples), classes)
    entropy, uniform = class_entropy(histogram) + 0.0, math.log(classes)  # + 0.0: -0.0 shown as 0
    holds = float(histogram.min()) >= MIN_SHARE and entropy >= MIN_ENTROPY * uniform
    picture = line_plot(ctx.picture("classes"), list(range(classes)),
                        {"share of the GAN's samples": (histogram.tolist(), None)}, "class (feature network)",
                        "share of samples", lines={"uniform": 1 / classes})
    grid = image_rows([samples[i * 10:(i + 1) * 10] for i in range(4)], ctx.picture("samples"))
    numbers = {"samples": SAMPLES, "class_shares": [round(float(v), 4) for v in histogram],
               "entropy": round(entropy, 4), "uniform_entropy": round(uniform, 4)}
    reason = (f"the rarest class has {float(histogram.min()):.1%} of the samples, the entropy is {entropy:.3f} "
              f"nats of the uniform's {uniform:.3f}")
    return Outcome(numbers, holds, reason, [("the classes of the GAN's samples", picture),
                                            ("samples, trained without labels", grid)])


# -- 13. k-steps -----------------------------------------------------------------------------------------------------

KS = (1, 2, 5)
K_TRAIN = {"epochs": 60, "batch_size": 64}
FEATURE_SAMPLES = 1000


def _fid(net: FeatureNetwork, model: GenerativeModel, real: torch.Tensor, seed: int) -> float:
    with torch.no_grad():
        fake = model.sample(FEATURE_SAMPLES, torch.Generator().manual_seed(seed))
    return float(feature_distances(net.features(real), net.features(fake), seed=seed)["fid"])


def k_steps(ctx: Context) -> Outcome:
    net, real = ctx.features(), ctx.images()
    fids, seconds = [], []
    for k in KS:
        result = ctx.train(f"k{k}", GAN.family, {"d_steps": k}, K_TRAIN)
        fids.append(_fid(net, cast(GenerativeModel, result.model.eval()), real, ctx.seed))
        seconds.append(sum(result.epoch_seconds))
    picture = line_plot(ctx.picture("fid"), seconds, {"FID (feature network) after the same epochs": (fids, None)},
                        "wall time of training (s)", "FID")
    numbers = {"k": list(KS), "fid": [round(v, 3) for v in fids], "train_seconds": [round(v, 1) for v in seconds]}
    best = KS[min(range(len(KS)), key=fids.__getitem__)]
    reason = (f"after {ctx.epochs(K_TRAIN['epochs'])} epochs, FID " + ", ".join(
        f"{f:.2f} (k={k}, {s:.0f} s)" for k, f, s in zip(KS, fids, seconds)) + f": k = {best} is best")
    return Outcome(numbers, best == 1, reason, [("FID against training time, one point per k", picture)])


# -- 15. gans-are-sharper ----------------------------------------------------------------------------------------------

def gans_are_sharper(ctx: Context) -> Outcome:
    real = ctx.images()
    models = {"GAN": _model(ctx, GAN.family, GAN.family, {}, GAN_TRAIN),
              "VAE": _model(ctx, VAE.family, VAE.family, CODE, TRAIN)}
    found: dict[str, float] = {}
    rows = []
    for name, model in models.items():
        with torch.no_grad():
            samples = model.sample(SAMPLES, torch.Generator().manual_seed(ctx.seed))
        rows.append(samples[:10])
        found[name] = pixel_quality(samples, real)["sharpness"]
    score = metric("sharpness").score
    picture = image_rows([real[:10], *rows], ctx.picture("samples"))
    numbers = {f"{k.lower()}_sharpness": round(v, 4) for k, v in found.items()}
    reason = (f"sharpness (1 = as sharp as the test images) {found['GAN']:.3f} for the GAN, {found['VAE']:.3f} for "
              "the VAE")
    return Outcome(numbers, score(found["GAN"]) > score(found["VAE"]), reason,
                   [("test images (top), GAN samples, VAE samples", picture)])


LESSONS = (
    Lesson("vae-latent-is-smooth",
           "Decoding codes drawn from the prior gives recognisable images for a VAE and fewer for a plain "
           "autoencoder of the same code size; interpolations between codes stay recognisable along the way.",
           "Kingma & Welling 2014, Auto-encoding variational Bayes; Bowman et al. 2016",
           "The feature network's mean confidence (its probability of the class it predicts) is higher on the "
           "VAE's prior samples than on the autoencoder's (codes drawn from a Gaussian fitted to its test codes), "
           f"and along {PAIRS} straight walks between VAE test codes it is, in between, at least {MIN_KEPT:.0%} "
           "of its value at the ends.",
           "Train a VAE and an autoencoder (code 8, one hidden layer of 128) and the feature network; decode "
           f"{SAMPLES} prior draws of each and {PAIRS} walks of {STEPS} steps.",
           vae_latent_is_smooth, seconds=20),
    Lesson("gans-need-no-labels",
           "A GAN trained without labels generates every class.",
           "Goodfellow et al. 2014, Generative adversarial nets",
           f"Of {SAMPLES} samples classified by the feature network, every class has at least {MIN_SHARE:.0%} and "
           f"the class entropy is at least {MIN_ENTROPY:.0%} of the uniform's, log 10.",
           "Train a GAN (the family's defaults) on the images alone and the feature network on the labelled "
           "training images; classify the GAN's samples.",
           gans_need_no_labels, seconds=40),
    Lesson("k-steps",
           "Algorithm 1 makes k discriminator steps per generator step; Goodfellow et al. used k = 1, the least "
           "expensive option.",
           "Goodfellow et al. 2014, Generative adversarial nets, Algorithm 1",
           f"After the same number of epochs (each makes one discriminator step per batch), k = 1 gives the lowest "
           f"FID of k = {', '.join(map(str, KS))}.",
           "Train a GAN with each k for the same epochs; measure the FID of its samples with the feature network "
           "and the training's wall time.",
           k_steps, seconds=45),
    Lesson("gans-are-sharper",
           "GAN samples are sharper than VAE samples (the report's claim).",
           "Goodfellow et al. 2014; Larsen et al. 2016, Autoencoding beyond pixels",
           "The GAN samples' sharpness (Laplacian variance over the test images') is closer to the test images' "
           "(1) than the VAE samples', as the comparison report scores it.",
           "Train a GAN (the family's defaults) and a VAE (code 8, one hidden layer of 128); measure the "
           f"sharpness of {SAMPLES} samples of each.",
           gans_are_sharper, seconds=45),
)
