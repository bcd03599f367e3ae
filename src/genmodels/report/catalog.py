"""Every metric of `genmodels evaluate`, declared once: its eval.json key, what it means, which value is
best, its unit and caveat, and where it is shown beyond the full table. The report's tables, glossary and
findings and the zoo's printed summary all read these declarations (docs/ARCHITECTURE.md, "Checklist: add a metric").

kind: "own" (the run's own measurement: its values compete), "reference" (a baseline computed beside the
run: PCA or raw pixels; shown, never marked best) or "info" (bookkeeping and spreads: never marked).
better: "lower", "higher" or "ideal" (closest to `ideal` is best); None: no direction.
samples: a measurement of the model's samples (a collapsed model's values never count as best).
column: the report's headline column the metric fills ("": none). stands_in: a word that marks it as the
column's stand-in, shown only for a run without the column's other metrics (the ELBO where no
importance-weighted estimate was measured).
summary: a column of the zoo's printed summary table.
given_label: a conditional run measures it given each image's label (log p(x|y), a reconstruction or code given y):
never ranked against other runs' values, and marked so in the headline.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evaluation import COLLAPSED_ENTROPY_FRACTION, COLLAPSED_RECALL
from ..metrics import LOW_DIVERSITY

FEATURE_CAVEAT = ("computed in this project's own feature space (the feature classifier of `genmodels features "
                  "train`), not Inception's: compare runs with each other, never with published numbers")


@dataclass(frozen=True)
class Metric:
    key: str  # as in eval.json
    meaning: str
    kind: str = "own"  # own | reference | info
    better: str | None = None  # lower | higher | ideal | None
    ideal: float | None = None
    unit: str = ""
    caveat: str = ""
    samples: bool = False
    column: str = ""
    stands_in: str = ""
    summary: bool = False
    given_label: bool = False

    @property
    def competes(self) -> bool:
        """Whether its values are ranked: a run's own metric with a direction."""
        return self.kind == "own" and self.better is not None

    def score(self, value: float) -> float:
        """The value on a scale where higher is better: the negated value where lower is better, the negated
        distance to the ideal where that is best."""
        if self.better == "lower":
            return -value
        if self.better == "ideal":
            return -abs(value - (self.ideal or 0.0))
        return value

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


_DECLARED = (
    # -- codes and reconstructions ---------------------------------------------------------------------
    Metric("reconstruction_sse", "Squared error between a test image and its reconstruction, summed over the pixels "
           "(values in [0, 1]) and averaged over the test images.", better="lower", ideal=0,
           unit="per image", column="reconstruction error", summary=True, given_label=True),
    Metric("reconstruction_sharpness", "Laplacian variance of the reconstructions over that of the test images "
           "(Pech-Pacheco et al. 2000): 1 is as sharp as the data, below 1 blurrier.",
           better="ideal", ideal=1, unit="ratio", given_label=True),
    Metric("linear_probe_accuracy", "Test accuracy of a logistic regression fitted on the codes of training images: "
           "how linearly the code separates the classes.", better="higher", ideal=1,
           unit="fraction", column="linear probe", summary=True, given_label=True),
    Metric("knn_accuracy", "Test accuracy of a 5-nearest-neighbour classifier on the codes: whether images of one "
           "class lie close together in the code.", better="higher", ideal=1, unit="fraction",
           summary=True, given_label=True),
    Metric("pca_reconstruction_sse", "PCA's reconstruction error with the same code size: the linear baseline an "
           "autoencoder should beat.", kind="reference", unit="per image"),
    Metric("linear_probe_accuracy_pixels", "The linear probe on the raw pixels: what the code is measured against.",
           kind="reference", unit="fraction"),
    Metric("knn_accuracy_pixels", "The 5-NN probe on the raw pixels.", kind="reference", unit="fraction"),
    Metric("linear_probe_accuracy_pca", "The linear probe on PCA codes of the same size.", kind="reference",
           unit="fraction"),
    Metric("knn_accuracy_pca", "The 5-NN probe on PCA codes of the same size.", kind="reference", unit="fraction"),
    # -- likelihoods -----------------------------------------------------------------------------------
    Metric("elbo", "Evidence lower bound on log p(x) of a test image (Kingma & Welling 2013, eq. 3): reconstruction "
           "log-likelihood minus the KL divergence of the code from the prior (vector data: in the data's units).",
           better="higher",
           unit="nats per image", caveat="a lower bound: the true log-likelihood is higher",
           column="log p(x)", stands_in="ELBO", summary=True, given_label=True),
    Metric("log_likelihood_iw", "Importance-weighted estimate of log p(x) of a test image from `importance_samples` "
           "codes each (Burda et al. 2016, eq. 8).", better="higher", unit="nats per image",
           caveat="still a lower bound, tighter with more samples; compare it only between "
           "models of the same data and pixel likelihood", column="log p(x)", summary=True, given_label=True),
    Metric("log_likelihood_iw_stderr", "Standard error of the importance-weighted estimate over the test images.",
           kind="info", unit="nats"),
    Metric("parzen_log_likelihood", "Log-likelihood of the test images under a Gaussian kernel density fitted to "
           "model samples (Goodfellow et al. 2014, Table 1).", better="higher",
           unit="nats per image", samples=True,
           caveat="Theis et al. (2016) show it can rank models wrongly in high dimensions: "
           "shown because the lecture uses it, not to choose a model", summary=True),
    Metric("parzen_log_likelihood_stderr", "Standard error of the Parzen estimate over the test images.", kind="info",
           unit="nats"),
    Metric("parzen_sigma", "The kernel width of the Parzen estimate, chosen on held-out training images.",
           kind="info", unit="pixel units"),
    # -- samples ---------------------------------------------------------------------------------------
    Metric("fid", "Fréchet distance between Gaussians fitted to the features of test images and of samples "
           "(Heusel et al. 2017): fidelity and coverage in one number.", better="lower", ideal=0,
           unit="squared feature distance", samples=True, caveat=FEATURE_CAVEAT, column="FID", summary=True),
    Metric("kid", "Kernel distance (unbiased squared MMD, cubic polynomial kernel) between the same features "
           "(Bińkowski et al. 2018); unlike FID, unbiased for few samples.", better="lower", ideal=0,
           unit="squared feature distance", samples=True, caveat=FEATURE_CAVEAT),
    Metric("kid_std", "Spread of the kernel distance over subsets of the samples.", kind="info"),
    Metric("precision", "Share of samples that fall inside the test images' feature manifold (k-NN balls, "
           "Kynkäänniemi et al. 2019): are the samples realistic?", better="higher", ideal=1,
           unit="fraction", samples=True,
           caveat="a collapsed model reaches 1 with a few good images: read it with recall; "
           + FEATURE_CAVEAT, column="precision", summary=True),
    Metric("recall", "Share of test images inside the samples' feature manifold (Kynkäänniemi et al. 2019): do "
           "the samples cover the data?", better="higher", ideal=1, unit="fraction", samples=True,
           caveat=FEATURE_CAVEAT, column="recall", summary=True),
    Metric("density", "How many test images' neighbourhoods (their k = 5 nearest neighbours' ball) hold each sample, "
           "on average, divided by k (Naeem et al. 2020): 1 when the samples spread like the data, above "
           "1 when they crowd its dense regions.", better="ideal", ideal=1, unit="ratio", samples=True,
           caveat=FEATURE_CAVEAT),
    Metric("coverage", "Share of test images whose neighbourhood holds at least one sample (Naeem et al. 2020).",
           better="ideal", ideal=1, unit="fraction", samples=True, caveat=FEATURE_CAVEAT),
    Metric("class_entropy", "Entropy of the classes the feature classifier predicts for the samples: ln C (2.30 for "
           "ten classes) when every class is drawn equally often, 0 when one class is.",
           better="higher", unit="nats", samples=True,
           caveat="the classes are the feature classifier's guesses, as good as its test accuracy"),
    Metric("class_histogram", "Share of the samples per predicted class, in class order.", kind="info",
           unit="fraction per class"),
    Metric("sharpness", "Laplacian variance of the samples over that of the test images (Pech-Pacheco et al. "
           "2000): 1 is as sharp as the data, below 1 blurrier.", better="ideal", ideal=1, unit="ratio",
           samples=True, caveat="above 1 means noise, not detail", summary=True),
    Metric("diversity", "Mean pairwise distance between samples over that between test images: 1 is as varied as "
           "the data, near 0 the samples are copies of one another.", better="ideal", ideal=1,
           unit="ratio", samples=True),
    # -- samples of a 2-D toy with a known density (genmodels.toy, metrics.modes) ------------------------------
    Metric("modes_covered", "Modes of the toy mixture that at least 1% of the samples lie within 3 standard "
           "deviations of (Metz et al. 2017; Srivastava et al. 2017): the modes the model did not drop, out of "
           "`modes_total`.", better="higher", unit="modes", samples=True, column="modes covered", summary=True),
    Metric("modes_total", "Modes of the toy mixture the samples are counted against.", kind="info", unit="modes"),
    Metric("high_quality_share", "Share of the samples within 3 standard deviations of some mode of the toy mixture "
           "(Srivastava et al. 2017): mass the model puts on the data rather than between the modes.",
           better="higher", ideal=1, unit="fraction", samples=True, column="high-quality share", summary=True),
    Metric("mean_log_density", "Mean log-density of the samples under the toy's true density (data units).",
           better="higher", unit="nats per sample", samples=True,
           caveat="highest for samples piled on the densest point: read it beside the modes covered"),
    Metric("skipped", "Metrics `evaluate` left out for this run, and why (a vector run has no pixels and no "
           "feature network).", kind="info"),
    Metric("collapsed", f"The verdict of `evaluate`: true when the samples cover few classes (class entropy below "
           f"{COLLAPSED_ENTROPY_FRACTION:g} of ln C) or little of the data (recall below {COLLAPSED_RECALL:g}), "
           f"or, without a feature network, are near copies of one another (diversity below "
           f"{LOW_DIVERSITY:g}).", kind="info"),
    # -- conditional models (model.conditional) -------------------------------------------------------------
    Metric("class_consistency", "Share of a conditional model's samples, drawn for uniformly drawn requested "
           "classes, that the feature classifier assigns to the class asked for: does it make the class asked "
           "for?", better="higher", ideal=1, unit="fraction", samples=True,
           caveat="the classes are the feature classifier's guesses: read it beside its accuracy on real test "
           "images (class_consistency_real)"),
    Metric("class_consistency_real", "The feature classifier's accuracy on the real test images: the most "
           "class_consistency can be expected to reach.", kind="reference", unit="fraction"),
    Metric("intra_fid", "The mean over classes of the FID between a conditional model's samples asked for as that "
           "class and that class's test images (Miyato & Koyama 2018): fidelity within each class.", better="lower",
           ideal=0, unit="squared feature distance", samples=True, caveat=FEATURE_CAVEAT),
    Metric("bayes_accuracy", "Test accuracy of a conditional model of p(x|y) as a classifier by Bayes' rule: each "
           "test image labelled argmax over y of log p(x|y) + log p(y), log p(x|y) the importance-weighted bound with "
           "`bayes_samples` codes, p(y) the training class proportions.", better="higher", ideal=1,
           unit="fraction", caveat="costs classes x bayes_samples decoder passes per test image"),
    Metric("bayes_samples", "Codes drawn per test image and class for bayes_accuracy (K).", kind="info"),
    Metric("bayes_confusion", "Bayes' rule's confusion matrix: row = true class, column = class chosen, counts of "
           "test images.", kind="info", unit="images"),
    # -- the GAN's players and the classifier ----------------------------------------------------------
    Metric("d_loss", "The discriminator's loss on the test images and as many samples.", kind="info", unit="nats"),
    Metric("d_real", "The discriminator's mean output on test images (1: sure they are real).", kind="info",
           unit="probability"),
    Metric("d_fake", "The discriminator's mean output on samples (0: sure they are fake).", kind="info",
           unit="probability"),
    Metric("test_accuracy", "The classifier's accuracy on the test images.", better="higher", ideal=1,
           unit="fraction"),
    Metric("test_error", "The classifier's error rate on the test images.", better="lower", ideal=0,
           unit="fraction", summary=True),
    # -- bookkeeping -----------------------------------------------------------------------------------
    Metric("family", "The model family of the run.", kind="info"),
    Metric("split", "The split the metrics were measured on.", kind="info"),
    Metric("images", "Test images measured.", kind="info", unit="images"),
    Metric("probe_train_images", "Training images the probes were fitted on.", kind="info", unit="images"),
    Metric("probe_test_images", "Test images the probes were scored on, where the test split is larger (the first "
           "10,000).", kind="info", unit="images"),
    Metric("importance_samples", "Codes drawn per test image for the importance-weighted estimate (K).", kind="info"),
    Metric("parzen_samples", "Model samples the Parzen density was fitted to.", kind="info", unit="samples"),
    Metric("quality_samples", "Model samples the sample-quality metrics were measured on.", kind="info",
           unit="samples"),
    Metric("eval_precision", "What the model's forward ran in during evaluation: fp32, or bf16-mixed / fp16-mixed "
           "(autocast; the metrics themselves are float32 or float64).", kind="info"),
    Metric("features", "The feature network of FID, KID, precision/recall, density/coverage and class entropy.",
           kind="info"),
)

METRICS: dict[str, Metric] = {m.key: m for m in _DECLARED}

UNKNOWN_MEANING = "A metric this report has no entry for."


def metric(key: str) -> Metric:
    """The declaration of `key`; a key nobody declared is bookkeeping that says so."""
    return METRICS.get(key) or Metric(key, UNKNOWN_MEANING, kind="info")


def headline_columns() -> list[tuple[str, tuple[str, ...]]]:
    """The report's headline: (column, the eval.json keys it shows, the first a run has wins), the columns in
    declaration order, a column's stand-in after its other keys."""
    columns: dict[str, list[Metric]] = {}
    for m in METRICS.values():
        if m.column:
            columns.setdefault(m.column, []).append(m)
    return [(name, tuple(m.key for m in sorted(ms, key=lambda m: bool(m.stands_in)))) for name, ms in columns.items()]


def summary_keys() -> list[str]:
    """The columns of the zoo's printed summary, in declaration order."""
    return [m.key for m in METRICS.values() if m.summary]
