"""Metrics, each a function of tensors or arrays."""

from .probes import knn_accuracy, linear_probe_accuracy

__all__ = ["knn_accuracy", "linear_probe_accuracy"]
