"""Metrics, each a function of tensors or arrays."""

from .distances import KIDResult, feature_moments, fid, frechet_distance, kid
from .manifold import (
    ManifoldResult,
    class_entropy,
    class_histogram,
    density_coverage,
    knn_radii,
    manifold_metrics,
    precision_recall,
)
from .modes import high_quality_share, mean_log_density, mode_counts, modes_covered
from .parzen import ParzenResult, default_sigmas, parzen_estimate, parzen_log_density, select_sigma
from .pixels import LOW_DIVERSITY, diversity, laplacian_fits, laplacian_variance, mean_pairwise_distance, sharpness
from .probes import knn_accuracy, linear_probe_accuracy

__all__ = ["LOW_DIVERSITY", "KIDResult", "ManifoldResult", "ParzenResult", "class_entropy", "class_histogram",
           "default_sigmas", "density_coverage", "diversity", "feature_moments", "fid", "frechet_distance", "kid",
           "high_quality_share", "knn_accuracy", "knn_radii", "laplacian_fits", "laplacian_variance",
           "linear_probe_accuracy", "manifold_metrics", "mean_log_density", "mean_pairwise_distance", "mode_counts",
           "modes_covered", "parzen_estimate", "parzen_log_density", "precision_recall", "select_sigma", "sharpness"]
