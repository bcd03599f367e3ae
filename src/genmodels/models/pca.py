"""PCA, the linear autoencoder, behind the same interface as the trained families.

With k components W (k, D) and mean m, encode(x) = W (x - m) and decode(z) = W^T z + m:
the linear map that minimises the squared reconstruction error over all rank-k linear
autoencoders (Baldi & Hornik 1989). It is solved exactly, not trained: one pass over the
training split accumulates sum x and sum x x^T in float64, and the top-k eigenvectors of
the covariance are the components.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from .. import distributed as ddp
from ..config import Strict
from ..data import Batch
from ..errors import ConfigError
from .base import Family, GenerativeModel, StepOutput


class PCAConfig(Strict):
    """Principal component analysis: the linear autoencoder, solved exactly (one pass over the data)."""

    latent_dim: int = Field(30, ge=1, description="number of principal components kept")


def principal_components(cov: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k eigenvectors (k, D) and eigenvalues (k,) of a symmetric covariance (D, D), largest first.

    Each component's sign is fixed (largest-magnitude entry positive) so results are reproducible."""
    values, vectors = torch.linalg.eigh(cov)  # ascending
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k].T  # (k,), (k, D)
    sign = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    return vectors * sign, values.clamp_min(0)


class PCA(GenerativeModel):
    family = "pca"
    encodes = True
    takes_vectors = True
    has_pca_baseline = False  # it is the baseline
    resumes_mid_epoch = False  # the pass's running sums are not checkpointed: an interrupted pass restarts
    # The buffers registered below, typed (nn.Module's attribute lookup would say Tensor | Module).
    mean: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor
    _sum: torch.Tensor
    _outer: torch.Tensor

    def __init__(self, config: PCAConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        d = math.prod(self.shape)
        if config.latent_dim > d:
            what = f"{d}-column vectors" if len(shape) == 1 else f"{d}-pixel images"
            raise ConfigError(f"PCA of {what} has at most {d} components, not {config.latent_dim}; "
                              f"give --latent-dim {d} or less.")
        self.register_buffer("mean", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("components", torch.zeros(config.latent_dim, d, dtype=torch.float64))
        self.register_buffer("explained_variance", torch.zeros(config.latent_dim, dtype=torch.float64))
        # Sufficient statistics of the current pass; not part of the saved weights.
        self.register_buffer("_sum", torch.zeros(d, dtype=torch.float64), persistent=False)
        self.register_buffer("_outer", torch.zeros(d, d, dtype=torch.float64), persistent=False)
        self._count = 0

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def make_optimizers(self, train, device) -> dict:
        return {}  # nothing is trained by gradient

    def start_epoch(self, epoch: int) -> None:
        self._sum.zero_()
        self._outer.zero_()
        self._count = 0

    def train_step(self, batch: Batch, ctx) -> dict[str, torch.Tensor]:
        xb = batch.x.flatten(1).double()
        self._sum += xb.sum(0)
        self._outer.addmm_(xb.T, xb)
        self._count += xb.shape[0]
        return {}

    def finish_epoch(self) -> None:
        # Under torchrun each rank saw a shard: sum the statistics, so every rank solves the same PCA.
        count = torch.tensor(float(self._count), dtype=torch.float64, device=self._sum.device)
        if ddp.sum_over_ranks([self._sum, self._outer, count]):
            self._count = int(count.item())
        mean = self._sum / self._count
        cov = self._outer / self._count - torch.outer(mean, mean)
        components, variance = principal_components(cov, self.latent_dim)
        self.mean.copy_(mean)
        self.components.copy_(components)
        self.explained_variance.copy_(variance)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates along the principal components, (B, k)."""
        return ((x.flatten(1).double() - self.mean) @ self.components.T).to(x.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The image in the principal subspace, (B, C, H, W) (or the vector, (B, D)); not clipped to [0, 1]."""
        return (z.double() @ self.components + self.mean).to(z.dtype).view(-1, *self.shape)

    def forward(self, x: torch.Tensor) -> StepOutput:
        rec = (self.reconstruct(x) - x).pow(2).flatten(1).sum(1).mean()  # squared error per image
        return StepOutput(rec, {"loss": rec, "rec": rec})


def fit_pca(data, k: int, batch_size: int = 10_000) -> PCA:
    """A PCA with k components fitted on a Dataset's images: the same single pass as `genmodels train pca`."""
    model = PCA(PCAConfig(latent_dim=k), data.shape).to(data.images.device)
    model.start_epoch(0)
    for i in range(0, len(data), batch_size):
        model.train_step(Batch(data.batch(slice(i, i + batch_size))), None)
    model.finish_epoch()
    return model.eval()


# PCA: one pass gathers the statistics of its exact solution; more epochs change nothing.
FAMILY = Family("pca", PCA, PCAConfig, "PCA, the linear autoencoder baseline (solved in one pass)", {"epochs": 1})
