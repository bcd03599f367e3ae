"""Lessons on where the mass goes and what a generative model knows of the classes: on 2-D data with known modes
the GAN's samples sit on the modes while the VAE's spread between them (`modes-vs-blur`), and a class-conditional
VAE is a classifier by Bayes' rule (`bayes-rule`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data import load_data
from ..metrics import high_quality_share, modes_covered
from ..metrics.probes import linear_probe_accuracy
from ..models import FAMILIES, GAN, VAE, EvalOptions
from ..report.findings import BAYES_WITHIN
from ..runs import draw_samples, load_run
from ..toy import TOYS, GaussianMixture
from ..vectordata import save_points
from .lesson import Context, Lesson, Outcome
from .pictures import confusion_plot

# -- 14. modes-vs-blur -----------------------------------------------------------------------------------------------

TOY, TOY_SIZE, TOY_SAMPLES = "ring8", 10_000, 10_000  # the toy's default size, on which TOY_TRAIN was measured


def mode_numbers(points: torch.Tensor, toy: GaussianMixture) -> dict[str, Any]:
    """The modes the samples (n, 2, data units) cover and their high-quality share: evaluate's measures
    (metrics.modes: a mode counts with 1% of the samples within 3 std of its centre; high quality: within 3 std
    of some centre)."""
    return {"modes_covered": modes_covered(points, toy.centre_points, toy.std), "modes_total": toy.classes,
            "high_quality_share": round(high_quality_share(points, toy.centre_points, toy.std), 4)}


def modes_verdict(gan: dict[str, Any], vae: dict[str, Any]) -> bool:
    """The criterion: the VAE covers every mode and the GAN's high-quality share is above the VAE's."""
    return vae["modes_covered"] == vae["modes_total"] and gan["high_quality_share"] > vae["high_quality_share"]


def modes_vs_blur(ctx: Context) -> Outcome:
    toy = TOYS[TOY]
    assert isinstance(toy, GaussianMixture)  # ring8 is a mixture: its modes are known
    data = load_data(TOY, toy_size=TOY_SIZE)
    found, pictures = {}, []
    for name, family in (("GAN", GAN.family), ("VAE", VAE.family)):
        settings = dict(FAMILIES[family].toy_train_defaults)  # given, so the epochs are the toy's, then scaled
        result = ctx.train(family, family, {}, settings, data=data, toy_size=TOY_SIZE)
        run = load_run(result.run_dir, data=data)
        points = run.in_units(draw_samples(run, TOY_SAMPLES, seed=ctx.seed).float()).cpu()
        found[name] = mode_numbers(points, toy)
        picture = save_points(points[:2000], ctx.picture(family), TOY,
                              title=f"{name}: {found[name]['modes_covered']}/{toy.classes} modes, "
                                    f"{found[name]['high_quality_share']:.0%} high quality")
        pictures.append((f"2,000 of the {name}'s samples over the true density's contours", picture))
    numbers = {"data": TOY, "toy_size": TOY_SIZE, "samples": TOY_SAMPLES,
               **{f"{k.lower()}_{m}": v for k, f in found.items() for m, v in f.items()}}
    reason = "; ".join(f"the {k} covers {f['modes_covered']}/{f['modes_total']} modes with "
                       f"{f['high_quality_share']:.1%} of its samples within 3 std of one" for k, f in found.items())
    return Outcome(numbers, modes_verdict(found["GAN"], found["VAE"]), reason, pictures)


# -- 16. bayes-rule --------------------------------------------------------------------------------------------------

BAYES_MODEL = {"conditional": True, "latent_dim": 8, "hidden": [128]}
BAYES_TRAIN = {"epochs": 100, "batch_size": 64, "lr": 2e-3}
BAYES_K, BATCH = 100, 100
WITHIN = BAYES_WITHIN  # the Bayes classifier's accuracy at most this far below the probe's: the report's bar


def bayes_verdict(bayes_accuracy: float, probe_accuracy: float, classes: int) -> bool:
    """The criterion: the Bayes classifier is far above chance (twice 1/classes) and within WITHIN of the probe."""
    return bayes_accuracy >= 2 / classes and bayes_accuracy >= probe_accuracy - WITHIN


def bayes_rule(ctx: Context) -> Outcome:
    test, train = ctx.data.test, ctx.data.train
    if test.labels is None or train.labels is None:
        return Outcome({}, False, f"the data {ctx.data.source} have no labels: there is no class to classify")
    model = ctx.train("cvae", VAE.family, BAYES_MODEL, BAYES_TRAIN).model.eval()
    x, truth = ctx.images(), test.labels.long()
    torch.manual_seed(ctx.seed)
    with torch.inference_mode():  # evaluate's own Bayes classifier (VAE.class_scores), on the images as evaluated
        found = model.evaluate(model.eval_input(x), truth, EvalOptions(1, BATCH, False, BAYES_K))
    confusion = np.asarray(found["bayes_confusion"])
    bayes, classes = float(found["bayes_accuracy"]), len(confusion)
    probe = linear_probe_accuracy(ctx.images("train").flatten(1).numpy(), np.asarray(train.labels),
                                  x.flatten(1).numpy(), np.asarray(truth))
    picture = confusion_plot(ctx.picture("confusion"), confusion)
    numbers = {"bayes_accuracy": round(bayes, 4), "probe_accuracy": round(probe, 4), "bayes_samples": BAYES_K,
               "test_images": len(x), "bayes_confusion": found["bayes_confusion"]}
    reason = (f"test accuracy {bayes:.1%} for the conditional VAE by Bayes' rule (K = {BAYES_K}) against {probe:.1%} "
              f"for the linear probe on pixels")
    return Outcome(numbers, bayes_verdict(bayes, probe, classes), reason,
                   [("the Bayes classifier's confusion matrix on the test images", picture)])


LESSONS = (
    Lesson("modes-vs-blur",
           "On data with separated modes, a GAN's samples sit on the modes (and may drop some), while a VAE covers "
           "every mode and puts mass between them.",
           "Goodfellow 2016, NIPS tutorial, section 3.2 and 5.1.1; Metz et al. 2017, Unrolled GANs; "
           "Theis et al. 2016",
           "Of 10,000 samples of each, the VAE's cover all 8 modes of ring8 (a mode counts with 1% of the samples "
           "within 3 std of its centre) and the GAN's share of high-quality samples (within 3 std of some mode) is "
           "above the VAE's; the GAN's modes are reported, not required.",
           f"Train a GAN and a VAE with their vector and toy defaults on {TOY_SIZE:,} points of ring8 (8 Gaussians "
           "of std 0.02 on a circle of radius 2); draw 10,000 samples of each.",
           modes_vs_blur, seconds=40),
    Lesson("bayes-rule",
           "A class-conditional VAE is a classifier by Bayes' rule, p(y|x) proportional to p(x|y) p(y), about as "
           "accurate as a discriminative classifier of the same images.",
           "Kingma et al. 2014, Semi-supervised learning with deep generative models; Sohn et al. 2015; "
           "Ng & Jordan 2002",
           f"The test accuracy of argmax over y of the importance-weighted log p(x|y) (K = {BAYES_K}) + log p(y) is "
           f"at least twice chance and at most {WITHIN:.0%} below that of a linear probe (logistic regression) "
           "on the pixels, trained on the same labelled training images.",
           "Train a conditional VAE (code 8, one hidden layer of 128); classify each test image by its largest "
           "bound over the classes; fit the linear probe on the training pixels.",
           bayes_rule, seconds=10),
)
