"""genmodels: the classic deep generative models, trained, sampled, evaluated and compared.

Python API (the command line calls exactly these):
    from genmodels import RunConfig, build_run_config, train, load_run, load_data
    cfg = build_run_config({"family": "vae", "model": {"latent_dim": 2}, "train": {"epochs": 5}})
    result = train(cfg, "runs/vae")
    run = load_run("runs/vae"); images = run.model.sample(16)
"""

from .config import DataConfig, TrainConfig
from .data import Dataset, DataSplits, load_data
from .engine import resume_run, train
from .errors import CheckpointError, ConfigError, DataError, GenmodelsError
from .models import FAMILIES, GAN, VAE, GANConfig, GenerativeModel, RunConfig, VAEConfig, build_run_config
from .rundir import RunDir
from .runs import Run, load_run

__version__ = "0.1.0"

__all__ = [
    "FAMILIES", "GAN", "VAE", "CheckpointError", "ConfigError", "DataConfig", "DataError", "DataSplits", "Dataset",
    "GANConfig", "GenerativeModel", "GenmodelsError", "Run", "RunConfig", "RunDir", "TrainConfig", "VAEConfig",
    "build_run_config", "load_data", "load_run", "resume_run", "train",
]
