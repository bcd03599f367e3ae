"""`genmodels zoo`: the lecture in one command (docs/ARCHITECTURE.md, "The zoo"). Trains PCA, the autoencoders
(plain, denoising, contractive, sparse, stacked denoising), a VAE and a GAN on one dataset with presets sized for
a laptop CPU, evaluates each, and writes the comparison report OUT/report.html.

Every run goes through the library's own engine.train and evaluation.evaluate into OUT/<name>, so each is an
ordinary run directory that every other command reads. Re-running with the same OUT skips finished runs with
the same settings and resumes unfinished ones.

entries: the table of the zoo's models, and the fixed presets read from it; plan: presets derived from another
dataset's shape to fit a time budget; run: training, evaluating and comparing them (genmodels.zoodir names the
folder's parts)."""

from ..zoodir import ZooDir
from .entries import DIGITS, ENTRIES, ENTRY, EVALUATE, FASHION_MNIST, PRESETS, Entry, Preset
from .plan import DEFAULT_BUDGET, Plan, derive_plan, measure_speed, rescaled_epochs
from .run import feature_network, run_state, run_zoo, summary_table

__all__ = ["DEFAULT_BUDGET", "DIGITS", "ENTRIES", "ENTRY", "EVALUATE", "FASHION_MNIST", "PRESETS",
           "Entry", "Plan", "Preset", "ZooDir", "derive_plan", "feature_network", "measure_speed", "rescaled_epochs",
           "run_state", "run_zoo", "summary_table"]
