"""What every metric of `genmodels evaluate` means: one entry per eval.json key, shown in the report as a
glossary and as the tooltip of each metric's name, and read by the report to decide which value is best.

kind: "own" (the run's own measurement: its values compete), "reference" (a baseline computed beside the
run: PCA or raw pixels; shown, never marked best) or "info" (bookkeeping and spreads: never marked).
better: "lower", "higher" or "ideal" (closest to `ideal` is best); None: no direction.
samples: a measurement of the model's samples (a collapsed model's values never count as best).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evaluation import COLLAPSED_ENTROPY_FRACTION, COLLAPSED_RECALL
from ..metrics import LOW_DIVERSITY

FEATURE_CAVEAT = ("computed in this project's own feature space (the feature classifier of `genmodels features "
                  "train`), not Inception's: compare runs with each other, never with published numbers")


@dataclass(frozen=True)
class Entry:
    meaning: str
    kind: str = "own"  # own | reference | info
    better: str | None = None  # lower | higher | ideal | None
    ideal: float | None = None
    unit: str = ""
    caveat: str = ""
    samples: bool = False

    @property
    def rule(self) -> str:
        """Which value is best, in words."""
        if self.kind == "reference":
            return "a reference line, not a score"
        if self.better == "ideal":
            return f"closest to {self.ideal:g} is best"
        if self.better:
            return f"{self.better} is better" + (f" (ideal {self.ideal:g})" if self.ideal is not None else "")
        return "no better or worse"


GLOSSARY: dict[str, Entry] = {
    # -- codes and reconstructions ---------------------------------------------------------------------
    "reconstruction_sse": Entry("Squared error between a test image and its reconstruction, summed over the pixels "
                                "(values in [0, 1]) and averaged over the test images.", better="lower", ideal=0,
                                unit="per image"),
    "reconstruction_sharpness": Entry("Laplacian variance of the reconstructions over that of the test images "
                                      "(Pech-Pacheco et al. 2000): 1 is as sharp as the data, below 1 blurrier.",
                                      better="ideal", ideal=1, unit="ratio"),
    "linear_probe_accuracy": Entry("Test accuracy of a logistic regression fitted on the codes of training images: "
                                   "how linearly the code separates the classes.", better="higher", ideal=1,
                                   unit="fraction"),
    "knn_accuracy": Entry("Test accuracy of a 5-nearest-neighbour classifier on the codes: whether images of one "
                          "class lie close together in the code.", better="higher", ideal=1, unit="fraction"),
    "pca_reconstruction_sse": Entry("PCA's reconstruction error with the same code size: the linear baseline an "
                                    "autoencoder should beat.", kind="reference", unit="per image"),
    "linear_probe_accuracy_pixels": Entry("The linear probe on the raw pixels: what the code is measured against.",
                                          kind="reference", unit="fraction"),
    "knn_accuracy_pixels": Entry("The 5-NN probe on the raw pixels.", kind="reference", unit="fraction"),
    "linear_probe_accuracy_pca": Entry("The linear probe on PCA codes of the same size.", kind="reference",
                                       unit="fraction"),
    "knn_accuracy_pca": Entry("The 5-NN probe on PCA codes of the same size.", kind="reference", unit="fraction"),
    # -- likelihoods -----------------------------------------------------------------------------------
    "elbo": Entry("Evidence lower bound on log p(x) of a test image (Kingma & Welling 2013, eq. 3): reconstruction "
                  "log-likelihood minus the KL divergence of the code from the prior.", better="higher",
                  unit="nats per image", caveat="a lower bound: the true log-likelihood is higher"),
    "log_likelihood_iw": Entry("Importance-weighted estimate of log p(x) of a test image from `importance_samples` "
                               "codes each (Burda et al. 2016, eq. 8).", better="higher", unit="nats per image",
                               caveat="still a lower bound, tighter with more samples; compare it only between "
                                      "models of the same data and pixel likelihood"),
    "log_likelihood_iw_stderr": Entry("Standard error of the importance-weighted estimate over the test images.",
                                      kind="info", unit="nats"),
    "parzen_log_likelihood": Entry("Log-likelihood of the test images under a Gaussian kernel density fitted to "
                                   "model samples (Goodfellow et al. 2014, Table 1).", better="higher",
                                   unit="nats per image", samples=True,
                                   caveat="Theis et al. (2016) show it can rank models wrongly in high dimensions: "
                                          "shown because the lecture uses it, not to choose a model"),
    "parzen_log_likelihood_stderr": Entry("Standard error of the Parzen estimate over the test images.", kind="info",
                                          unit="nats"),
    "parzen_sigma": Entry("The kernel width of the Parzen estimate, chosen on held-out training images.",
                          kind="info", unit="pixel units"),
    # -- samples ---------------------------------------------------------------------------------------
    "fid": Entry("Fréchet distance between Gaussians fitted to the features of test images and of samples "
                 "(Heusel et al. 2017): fidelity and coverage in one number.", better="lower", ideal=0,
                 unit="squared feature distance", samples=True, caveat=FEATURE_CAVEAT),
    "kid": Entry("Kernel distance (unbiased squared MMD, cubic polynomial kernel) between the same features "
                 "(Bińkowski et al. 2018); unlike FID, unbiased for few samples.", better="lower", ideal=0,
                 unit="squared feature distance", samples=True, caveat=FEATURE_CAVEAT),
    "kid_std": Entry("Spread of the kernel distance over subsets of the samples.", kind="info"),
    "precision": Entry("Share of samples that fall inside the test images' feature manifold (k-NN balls, "
                       "Kynkäänniemi et al. 2019): are the samples realistic?", better="higher", ideal=1,
                       unit="fraction", samples=True,
                       caveat="a collapsed model reaches 1 with a few good images: read it with recall; "
                              + FEATURE_CAVEAT),
    "recall": Entry("Share of test images inside the samples' feature manifold (Kynkäänniemi et al. 2019): do "
                    "the samples cover the data?", better="higher", ideal=1, unit="fraction", samples=True,
                    caveat=FEATURE_CAVEAT),
    "density": Entry("How many test images' neighbourhoods (their k = 5 nearest neighbours' ball) hold each sample, "
                     "on average, divided by k (Naeem et al. 2020): 1 when the samples spread like the data, above "
                     "1 when they crowd its dense regions.", better="ideal", ideal=1, unit="ratio", samples=True,
                     caveat=FEATURE_CAVEAT),
    "coverage": Entry("Share of test images whose neighbourhood holds at least one sample (Naeem et al. 2020).",
                      better="ideal", ideal=1, unit="fraction", samples=True, caveat=FEATURE_CAVEAT),
    "class_entropy": Entry("Entropy of the classes the feature classifier predicts for the samples: ln C (2.30 for "
                           "ten classes) when every class is drawn equally often, 0 when one class is.",
                           better="higher", unit="nats", samples=True,
                           caveat="the classes are the feature classifier's guesses, as good as its test accuracy"),
    "class_histogram": Entry("Share of the samples per predicted class, in class order.", kind="info",
                             unit="fraction per class"),
    "sharpness": Entry("Laplacian variance of the samples over that of the test images (Pech-Pacheco et al. "
                       "2000): 1 is as sharp as the data, below 1 blurrier.", better="ideal", ideal=1, unit="ratio",
                       samples=True, caveat="above 1 means noise, not detail"),
    "diversity": Entry("Mean pairwise distance between samples over that between test images: 1 is as varied as "
                       "the data, near 0 the samples are copies of one another.", better="ideal", ideal=1,
                       unit="ratio", samples=True),
    "collapsed": Entry(f"The verdict of `evaluate`: true when the samples cover few classes (class entropy below "
                       f"{COLLAPSED_ENTROPY_FRACTION:g} of ln C) or little of the data (recall below {COLLAPSED_RECALL:g}), "
                       f"or, without a feature network, are near copies of one another (diversity below "
                       f"{LOW_DIVERSITY:g}).", kind="info"),
    # -- the GAN's players and the classifier ----------------------------------------------------------
    "d_loss": Entry("The discriminator's loss on the test images and as many samples.", kind="info", unit="nats"),
    "d_real": Entry("The discriminator's mean output on test images (1: sure they are real).", kind="info",
                    unit="probability"),
    "d_fake": Entry("The discriminator's mean output on samples (0: sure they are fake).", kind="info",
                    unit="probability"),
    "test_accuracy": Entry("The classifier's accuracy on the test images.", better="higher", ideal=1,
                           unit="fraction"),
    "test_error": Entry("The classifier's error rate on the test images.", better="lower", ideal=0,
                        unit="fraction"),
    # -- bookkeeping -----------------------------------------------------------------------------------
    "family": Entry("The model family of the run.", kind="info"),
    "split": Entry("The split the metrics were measured on.", kind="info"),
    "images": Entry("Test images measured.", kind="info", unit="images"),
    "probe_train_images": Entry("Training images the probes were fitted on.", kind="info", unit="images"),
    "probe_test_images": Entry("Test images the probes were scored on, where the test split is larger (the first "
                               "10,000).", kind="info", unit="images"),
    "importance_samples": Entry("Codes drawn per test image for the importance-weighted estimate (K).", kind="info"),
    "parzen_samples": Entry("Model samples the Parzen density was fitted to.", kind="info", unit="samples"),
    "quality_samples": Entry("Model samples the sample-quality metrics were measured on.", kind="info",
                             unit="samples"),
    "eval_precision": Entry("What the model's forward ran in during evaluation: fp32, or bf16-mixed / fp16-mixed "
                            "(autocast; the metrics themselves are float32 or float64).", kind="info"),
    "features": Entry("The feature network of FID, KID, precision/recall, density/coverage and class entropy.",
                      kind="info"),
}

UNKNOWN = Entry("A metric this report has no entry for.", kind="info")


def entry(metric: str) -> Entry:
    return GLOSSARY.get(metric, UNKNOWN)
