"""A .npy file of vectors (N, D) trains a VAE and a GAN from a memory map of the file: no copy of the data in the
process, the standardisation applied a batch at a time (benchmarks/memmap_memory.py measures the memory)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels import build_run_config, train
from genmodels.dataset import Dataset
from genmodels.training import Training

ROWS = 40_000  # vectors in the file: each read of it (a batch, a block of rows) is at most a quarter of them

MODELS = {"vae": {"hidden": [16], "latent_dim": 2}, "gan": {"hidden": [16], "latent_dim": 4}}


def mapped_from(tensor: torch.Tensor, path: Path) -> bool:
    """Whether the tensor's bytes lie in a mapping of the file `path` (/proc/self/maps), not in the process's own
    memory: the kernel's record of where each address range comes from."""
    start, end = tensor.data_ptr(), tensor.data_ptr() + tensor.numel() * tensor.element_size()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and Path(fields[5]) == path.resolve():
            lo, hi = (int(v, 16) for v in fields[0].split("-"))
            if lo <= start and end <= hi:
                return True
    return False


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """A (ROWS, 32) float32 .npy of vectors far from standardised (means 100 + 10 j)."""
    path = tmp_path_factory.mktemp("memmap") / "v.npy"
    rng = np.random.default_rng(0)
    np.save(path, (100 + 10 * np.arange(32) + rng.normal(size=(ROWS, 32))).astype(np.float32))
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.filterwarnings("ignore:After epoch")  # one epoch of a GAN looks collapsed: not what is tested here
@pytest.mark.parametrize("family", ["vae", "gan"])
def test_training_on_a_npy_of_vectors_reads_a_memory_map_of_the_file(vectors, tmp_path, monkeypatch, family):
    seen, reads = [], []
    fit, stored_rows = Training.fit, Dataset.stored

    def watched(self):
        seen.append(self)
        fit(self)

    def read(self, index=slice(None)):  # every read of the data goes through Dataset.stored
        rows = stored_rows(self, index)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(Training, "fit", watched)
    monkeypatch.setattr(Dataset, "stored", read)
    cfg = build_run_config({"family": family, "model": MODELS[family], "data": {"source": str(vectors)},
                            "train": {"epochs": 1, "batch_size": 4000}})
    train(cfg, tmp_path / family, progress=False)
    # Checked, standardised, fingerprinted, trained and evaluated a block or a batch at a time: never read whole.
    assert reads and max(reads) <= ROWS // 4, f"a read of {max(reads)} of the file's {ROWS} rows at once"
    (training,) = seen
    stored = np.load(vectors, mmap_mode="r")
    for split in (training.train_set, training.test_set):
        # The whole file, mapped: each split is a list of rows into it (Dataset.rows), not a copy of its rows.
        assert tuple(split.images.shape) == stored.shape and split.rows is not None
        assert mapped_from(split.images, vectors), f"{split.name} is not read from a map of {vectors}"
        assert torch.equal(split.images[:3], torch.from_numpy(np.array(stored[:3])))  # data units, as stored
    # Standardised a batch at a time (Dataset.batch), never in the map.
    batch = training.train_set.batch(torch.arange(2000))
    assert abs(float(batch.mean())) < 0.3 and 0.7 < float(batch.std()) < 1.3
