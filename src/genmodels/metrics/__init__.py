"""Metrics, each a function of tensors or arrays."""

from .parzen import ParzenResult, default_sigmas, parzen_estimate, parzen_log_density, select_sigma
from .probes import knn_accuracy, linear_probe_accuracy

__all__ = ["ParzenResult", "default_sigmas", "knn_accuracy", "linear_probe_accuracy", "parzen_estimate",
           "parzen_log_density", "select_sigma"]
