"""Metrics, each a function of tensors."""

from .parzen import ParzenResult, default_sigmas, parzen_estimate, parzen_log_density, select_sigma

__all__ = ["ParzenResult", "default_sigmas", "parzen_estimate", "parzen_log_density", "select_sigma"]
