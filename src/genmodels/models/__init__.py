"""Model families by name; the config of each is in genmodels.config.MODEL_CONFIGS."""

from __future__ import annotations

from .ae import AutoEncoder
from .base import GenerativeModel, StepOutput
from .classifier import Classifier
from .gan import GAN
from .pca import PCA
from .stacked import StackedDenoisingAutoEncoder
from .vae import VAE

FAMILIES: dict[str, type[GenerativeModel]] = {
    "vae": VAE, "ae": AutoEncoder, "sdae": StackedDenoisingAutoEncoder, "pca": PCA, "gan": GAN,
    "classifier": Classifier,
}


def build_model(family: str, config, shape: tuple[int, int, int]) -> GenerativeModel:
    return FAMILIES[family](config, shape)


__all__ = ["AutoEncoder", "Classifier", "FAMILIES", "GAN", "GenerativeModel", "PCA", "StackedDenoisingAutoEncoder",
           "StepOutput", "VAE", "build_model"]
