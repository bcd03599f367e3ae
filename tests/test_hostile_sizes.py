"""Sizes that cannot fit: a model's memory is counted on the meta device before it is built, and what exceeds the
memory free is refused in one sentence with the estimate and the limit, before a run directory is touched; a
--threads far beyond the cores is capped with a warning. No test here allocates more than a tiny model."""

import json
import re
import shutil
import warnings

import pytest
import torch

from conftest import TINY, cli, one_sentence, tiny_vae_config
from genmodels import ConfigError, build_run_config
from genmodels import runtime as runtime_module
from genmodels.models import FAMILIES, build_model
from genmodels.models import footprint as fp

ESTIMATE = re.compile(r"needs about [\d,.]+ GB .*, more than the [\d,.]+ [GM]B of memory free on this machine")


@pytest.mark.parametrize("family, flags, named", [
    ("vae", ["--latent-dim", "100000000"], ["--latent-dim", "--hidden", "--batch-size"]),  # 154e9 parameters
    ("vae", ["--hidden", "1000000000"], ["--hidden"]),  # 178e9 parameters: the allocator's traceback before
    ("gan", ["--arch", "conv", "--channels", "100000,100000"], ["--channels"]),
    ("sdae", ["--layers", "1000000,1000000"], ["--layers"]),  # 1e12 parameters: 16 TB to train
])
def test_a_model_too_large_for_memory_is_refused_before_the_run_directory(tmp_path, capsys, family, flags, named):
    out = tmp_path / "run"
    assert cli("train", family, *flags, "--epochs", "1", "--out", out, "--no-progress") == 2
    err = one_sentence(capsys, "Training this", *named)
    assert ESTIMATE.search(err), err
    assert not out.exists()


def test_the_estimate_is_what_decides(digits, monkeypatch):
    """The digits VAE of the tests fits in a few MB: refused when a byte less than its estimate is free,
    accepted at its estimate."""
    config = tiny_vae_config()
    found = fp.footprint(FAMILIES["vae"].model, config.model, digits.shape)
    need = found.training(min(config.train.batch_size, len(digits.train)))
    monkeypatch.setattr(fp, "free_memory", lambda device: need)
    config.check_memory(digits)
    monkeypatch.setattr(fp, "free_memory", lambda device: need - 1)
    with pytest.raises(ConfigError, match=r"Training this vae model needs about 1 MB .* more than the 1 MB"):
        config.check_memory(digits)
    monkeypatch.setattr(fp, "free_memory", lambda device: None)  # unknown (an Apple GPU): not refused
    config.check_memory(digits)


def test_the_data_moved_to_a_gpu_is_counted(digits, monkeypatch):
    config = tiny_vae_config()
    found = fp.footprint(FAMILIES["vae"].model, config.model, digits.shape)
    need = found.training(min(config.train.batch_size, len(digits.train)))
    monkeypatch.setattr(fp, "free_memory", lambda device: need)
    with pytest.raises(ConfigError, match=r"of data on the device\), more than the 1 MB of memory free on cuda:0"):
        fp.check_training(FAMILIES["vae"].model, config.model, config.train, digits, torch.device("cuda", 0))


CONFIGS = [("vae", {"hidden": [32]}), ("vae", {"arch": "conv", "channels": [8, 16]}),
           ("ae", {"hidden": [32], "latent_dim": 4}), ("ae", {"arch": "conv", "channels": [8]}),
           ("sdae", {"layers": [32, 8]}), ("pca", {"latent_dim": 4}), ("gan", {"hidden": [32, 16]}),
           ("gan", {"arch": "conv", "channels": [8, 16]}), ("classifier", {"classes": 10, "arch": "conv"}),
           ("classifier", {"classes": 10, "arch": "mlp"})]


@pytest.mark.parametrize("family, settings", CONFIGS)
def test_the_meta_count_is_the_real_models_and_bounds_its_activations(family, settings):
    shape = (1, 16, 16)
    config = FAMILIES[family].config.model_validate(settings)
    found = fp.footprint(FAMILIES[family].model, config, shape)
    model = build_model(family, config, shape)
    assert found.parameters == sum(p.numel() for p in model.parameters())
    assert found.trained == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert found.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    outputs = []  # every linear and conv layer's output in a real forward of 2 images
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(lambda m, i, o: outputs.append(o.numel()))
    x, labels = torch.rand(2, *shape), torch.tensor([0, 1])
    model(x, labels) if model.needs_labels else model(x)
    assert sum(outputs) / 2 <= found.activations


def test_a_run_whose_saved_sizes_cannot_fit_is_refused_by_the_commands_that_load_it(tmp_path, capsys, done_run):
    run = tmp_path / "run"
    shutil.copytree(done_run.run_dir, run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] = 10**11  # 9.8e12 parameters: 39 TB of weights
    (run / "config.json").write_text(json.dumps(config))
    for command in (["sample", run, "--out", tmp_path / "s.png"], ["evaluate", run], ["encode", run]):
        assert cli(*command) == 2
        err = one_sentence(capsys, "This vae model needs about 39,200.0 GB for its weights alone "
                                   "(9,800,000,004,224 parameters)", "--latent-dim")
        assert re.search(r"more than the [\d,.]+ [GM]B of memory free on this machine", err), err


def test_build_model_refuses_before_allocating(monkeypatch):
    config = build_run_config({"family": "vae", "model": {"hidden": [16], "latent_dim": 2}})
    monkeypatch.setattr(fp, "free_memory", lambda device: 1000)
    with pytest.raises(ConfigError, match=r"needs about 1 MB for its weights alone \([\d,]+ parameters\), more than "
                                          r"the 1 MB"):
        build_model("vae", config.model, (1, 8, 8))


def test_pcas_statistics_are_counted_too():
    """PCA has no parameters: its d x d sums (float64) are buffers, 141 TB for 2048 x 2048 images."""
    config = FAMILIES["pca"].config()
    with pytest.raises(ConfigError, match=r"This pca model needs about 140,738.6 GB for its weights alone "
                                          r"\(140,738.6 GB of buffers\), .* choose a smaller --latent-dim, or use"):
        build_model("pca", config, (1, 2048, 2048))


def test_the_sizes_named_are_those_that_size_the_model():
    """Doubling finds them: not --epochs-like counts (the GAN's --d-steps, the sdae's --pretrain-epochs)."""
    for family, settings, shape, expected in [
        ("vae", {}, (1, 8, 8), ["--latent-dim", "--hidden"]),
        ("vae", {"arch": "conv"}, (1, 28, 28), ["--latent-dim", "--channels"]),
        ("gan", {"arch": "mlp"}, (1, 8, 8), ["--latent-dim", "--hidden"]),
        ("sdae", {}, (1, 8, 8), ["--layers"]),  # --classes sizes only the supervised head
        ("sdae", {"finetune": "supervised"}, (1, 8, 8), ["--layers", "--classes"]),
        ("pca", {"latent_dim": 20}, (1, 8, 8), ["--latent-dim"]),  # its components: buffers, not parameters
        ("pca", {"latent_dim": 40}, (1, 8, 8), []),  # 80 codes of 64-pixel images: PCA's own refusal, not named
    ]:
        config = FAMILIES[family].config.model_validate(settings)
        found = fp.footprint(FAMILIES[family].model, config, shape)
        assert fp.size_flags(FAMILIES[family].model, config, shape, found) == expected, family


def test_threads_far_beyond_the_cores_are_capped_with_a_warning(monkeypatch):
    asked = []
    monkeypatch.setattr(runtime_module.torch, "set_num_threads", asked.append)
    cores = runtime_module.cores()
    with pytest.warns(RuntimeWarning, match=rf"--threads 100000 \(train.threads\) is more than {4 * cores}, "
                                            rf"4 for each of the {cores} CPU cores here, so genmodels uses {cores}"):
        runtime_module.set_threads(100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runtime_module.set_threads(4 * cores)  # at the limit: taken as given
    assert asked == [cores, 4 * cores]


def test_train_with_too_many_threads_warns_and_trains(tmp_path, capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(runtime_module.torch, "set_num_threads", asked.append)
    assert cli("train", "vae", *TINY, "--epochs", "1", "--threads", "100000", "--out", tmp_path / "run") == 0
    assert "genmodels: warning: --threads 100000 (train.threads) is more than" in capsys.readouterr().err
    assert asked == [runtime_module.cores()]
