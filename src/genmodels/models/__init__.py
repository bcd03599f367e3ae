"""Model families by name; the config of each is in genmodels.config.MODEL_CONFIGS."""

from __future__ import annotations

from .base import GenerativeModel, StepOutput
from .vae import VAE

FAMILIES: dict[str, type[GenerativeModel]] = {"vae": VAE}


def build_model(family: str, config, shape: tuple[int, int, int]) -> GenerativeModel:
    return FAMILIES[family](config, shape)


__all__ = ["FAMILIES", "GenerativeModel", "StepOutput", "VAE", "build_model"]
