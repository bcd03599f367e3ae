"""The model families (docs/ARCHITECTURE.md, "Families"): one module each, registered in registry.py."""

from __future__ import annotations

from .ae import AEConfig, AutoEncoder
from .base import Family, GenerativeModel, Model, StepOutput
from .classifier import Classifier, ClassifierConfig
from .gan import GAN, GANConfig
from .pca import PCA, PCAConfig
from .registry import FAMILIES, RunConfig, build_model, build_run_config, families_that, family
from .stacked import SDAEConfig, StackedDenoisingAutoEncoder
from .vae import VAE, VAEConfig

__all__ = ["AEConfig", "AutoEncoder", "Classifier", "ClassifierConfig", "FAMILIES", "Family", "GAN", "GANConfig",
           "GenerativeModel", "Model", "PCA", "PCAConfig", "RunConfig", "SDAEConfig", "StackedDenoisingAutoEncoder",
           "StepOutput", "VAE", "VAEConfig", "build_model", "build_run_config", "families_that", "family"]
