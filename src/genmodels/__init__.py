"""genmodels: the classic deep generative models, trained, sampled, evaluated and compared.

Python API (the command line calls exactly these):
    from genmodels import RunConfig, build_run_config, train, load_run, load_data
    cfg = build_run_config({"family": "vae", "model": {"latent_dim": 2}, "train": {"epochs": 5}})
    result = train(cfg, "runs/vae")
    run = load_run("runs/vae"); images = run.model.sample(16)
"""

from .config import DataConfig, GANConfig, RunConfig, TrainConfig, VAEConfig, build_run_config
from .data import DataSplits, Dataset, load_data
from .engine import train
from .errors import CheckpointError, ConfigError, DataError, GenmodelsError
from .models import GAN, VAE, GenerativeModel
from .runs import Run, load_run

__version__ = "0.1.0"

__all__ = [
    "GAN", "VAE", "CheckpointError", "ConfigError", "DataConfig", "DataError", "DataSplits", "Dataset",
    "GANConfig", "GenerativeModel", "GenmodelsError", "Run", "RunConfig", "TrainConfig", "VAEConfig",
    "build_run_config", "load_data", "load_run", "train",
]
