"""The model families (docs/ARCHITECTURE.md, "Families"): one module each, registered in registry.py."""

from __future__ import annotations

from .ae import AEConfig, AutoEncoder
from .base import EVAL_DEFAULTS, EvalOptions, Family, GenerativeModel, Images, Model, StepOutput
from .classifier import Classifier, ClassifierConfig
from .gan import GAN, GANConfig
from .pca import PCA, PCAConfig, fit_pca
from .registry import (
    FAMILIES,
    FEATURE_NETWORK,
    RunConfig,
    build_model,
    build_run_config,
    families_that,
    family,
    model_for_data,
)
from .stacked import SDAEConfig, StackedDenoisingAutoEncoder
from .vae import VAE, VAEConfig

__all__ = ["AEConfig", "AutoEncoder", "Classifier", "ClassifierConfig", "EVAL_DEFAULTS", "EvalOptions", "FAMILIES",
           "FEATURE_NETWORK", "Family", "GAN", "GANConfig", "GenerativeModel", "Images", "Model", "PCA", "PCAConfig",
           "RunConfig", "SDAEConfig", "StackedDenoisingAutoEncoder", "StepOutput", "VAE", "VAEConfig", "build_model",
           "build_run_config", "families_that", "family", "fit_pca", "model_for_data"]
