"""PCA baseline, stacked denoising autoencoder, and the code-quality evaluation."""

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from genmodels import ConfigError, DataError, build_run_config, train
from genmodels.cli import main
from genmodels.data import Batch, Dataset, DataSplits
from genmodels.evaluation import evaluate
from genmodels.models import SDAEConfig, StackedDenoisingAutoEncoder
from genmodels.models.pca import fit_pca
from genmodels.optim import StepContext
from genmodels.runs import load_run


def _flat(data):
    return data.batch(slice(0, len(data))).flatten(1)


def test_pca_matches_scikit_learn(digits):
    pca = fit_pca(digits.train, 10)
    sk = SkPCA(n_components=10, svd_solver="full").fit(_flat(digits.train).double().numpy())
    x = digits.test.batch(slice(0, len(digits.test)))
    ours = (pca.reconstruct(x) - x).pow(2).flatten(1).sum(1).mean().item()
    xt = _flat(digits.test).double().numpy()
    theirs = ((sk.inverse_transform(sk.transform(xt)) - xt) ** 2).sum(1).mean()
    assert ours == pytest.approx(theirs, rel=1e-5)
    # Same subspace: the projections onto the two bases agree.
    p_ours = pca.components.T @ pca.components
    p_sk = torch.from_numpy(sk.components_.T @ sk.components_)
    assert torch.allclose(p_ours, p_sk, atol=1e-6)


def test_train_pca_through_the_engine_equals_fit_pca(digits, tmp_path):
    cfg = build_run_config({"family": "pca", "model": {"latent_dim": 6}})
    assert cfg.train.epochs == 1  # the family's default: one pass is the exact solution
    model = train(cfg, tmp_path / "pca", progress=False, data=digits).model
    reference = fit_pca(digits.train, 6)
    assert torch.allclose(model.components, reference.components, atol=1e-9)
    reloaded = load_run(tmp_path / "pca").model
    x = digits.test.batch(slice(0, 20))
    assert torch.equal(reloaded.encode(x), model.encode(x))


def test_linear_autoencoder_approaches_pca(digits, tmp_path):
    """Baldi & Hornik 1989: a linear AE trained on squared error spans the principal subspace."""
    x = digits.test.batch(slice(0, len(digits.test)))
    pca_error = (fit_pca(digits.train, 8).reconstruct(x) - x).pow(2).flatten(1).sum(1).mean().item()
    cfg = build_run_config({"family": "ae", "model": {"latent_dim": 8, "hidden": []},
                            "train": {"epochs": 30, "batch_size": 64, "lr": 1e-2}})
    history = train(cfg, tmp_path / "lin", progress=False, data=digits).history
    errors = [r["rec"] for r in history if r["split"] == "test"]
    assert errors[0] > 1.5 * pca_error  # it starts far from PCA ...
    assert errors[-1] < 1.10 * pca_error  # ... and ends within 10% of it


def _sdae(**kw):
    torch.manual_seed(0)
    config = SDAEConfig(**{"layers": [12, 6, 3], "pretrain_epochs": 2, "corrupt": ["mask:0.5"], **kw})
    return StackedDenoisingAutoEncoder(config, (1, 4, 4))


def test_sdae_schedule_runs_each_layer_then_fine_tuning():
    m = _sdae()
    assert m.total_epochs(4) == 3 * 2 + 4
    phases = []
    for epoch in range(m.total_epochs(4)):
        m.start_epoch(epoch)
        phases.append(m.phase_name)
    assert phases == ["layer1"] * 2 + ["layer2"] * 2 + ["layer3"] * 2 + ["finetune"] * 4


def test_sdae_pretraining_layer_k_leaves_lower_layers_unchanged():
    m = _sdae()
    opts = m.make_optimizers(build_run_config({"family": "sdae"}).train, torch.device("cpu"))
    ctx = StepContext(m, opts)
    m.start_epoch(2)  # layer 2's pretraining
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.rand(16, 1, 4, 4)
    for _ in range(5):
        m.train_step(Batch(x), ctx)
    after = m.state_dict()
    for name in ["enc.0.weight", "enc.0.bias", "dec.0.weight", "enc.2.weight", "dec.2.weight"]:
        assert torch.equal(before[name], after[name]), name
    for name in ["enc.1.weight", "dec.1.weight"]:
        assert not torch.equal(before[name], after[name]), name


def test_sdae_layer_k_input_is_the_corrupted_clean_output_of_layers_below():
    m = _sdae()
    m.start_epoch(2)
    seen = []
    m.enc[1].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    x = torch.rand(32, 1, 4, 4)
    out = m(x)
    clean = m.encode_to(x, 1)
    h_in = seen[0]
    kept = h_in != 0
    assert torch.equal(h_in[kept], clean[kept])  # masking noise: each entry is the clean value or 0
    assert 0.3 < (~kept).float().mean() < 0.7  # about half masked (mask:0.5)
    # The target is the clean output, not the corrupted input.
    recon = m.dec_act[1](m.dec[1](m.enc_act[1](m.enc[1](h_in))))
    assert torch.allclose(out.parts["layer2_rec"], (recon - clean).pow(2).sum(1).mean())


def test_sdae_trains_and_resumes_exactly_across_phases(digits, tmp_path):
    values = {"family": "sdae", "model": {"layers": [32, 8], "pretrain_epochs": 1},
              "train": {"epochs": 3, "batch_size": 64, "lr": 3e-3, "log_every": 5}}
    full = train(build_run_config(values), tmp_path / "full", progress=False, data=digits)
    tests = [r for r in full.history if r["split"] == "test"]
    assert [("layer1_rec" in r, "layer2_rec" in r, "rec" in r) for r in tests] == (
        [(True, False, False), (False, True, False)] + [(False, False, True)] * 3)
    assert tests[-1]["rec"] < tests[2]["rec"]  # fine-tuning lowers the reconstruction error
    part = build_run_config({**values, "train": {**values["train"], "epochs": 1}})
    train(part, tmp_path / "part", progress=False, data=digits)  # stops after layer 1's pretraining + 1 more epoch
    resumed = train(build_run_config(values), tmp_path / "part", resume=True, progress=False, data=digits)
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_sdae_supervised_fine_tuning_reports_test_error(digits, tmp_path):
    cfg = build_run_config({"family": "sdae", "model": {"layers": [64, 32], "pretrain_epochs": 1,
                                                        "finetune": "supervised", "activation": "relu"},
                            "train": {"epochs": 8, "batch_size": 64, "lr": 3e-3}})
    result = train(cfg, tmp_path / "sup", progress=False, data=digits)
    errors = [r["error"] for r in result.history if r["split"] == "test" and "error" in r]
    assert errors[-1] < 0.15 < errors[0] or errors[-1] < 0.5 * errors[0]
    metrics = evaluate(load_run(tmp_path / "sup"), importance_samples=1, probe_train=0)
    assert metrics["test_error"] == pytest.approx(errors[-1], abs=1e-6)


def test_sdae_supervised_without_labels_says_so(tmp_path):
    images = torch.rand(40, 1, 4, 4)
    data = DataSplits(Dataset(images, None, "unlabelled"), Dataset(images, None, "unlabelled"), "array")
    cfg = build_run_config({"family": "sdae", "model": {"layers": [4], "finetune": "supervised"}})
    with pytest.raises(DataError, match="needs labels"):
        train(cfg, tmp_path / "x", progress=False, data=data)


@pytest.mark.parametrize("family, model, match", [
    ("sdae", {"layers": []}, "layers"),
    ("sdae", {"pretrain_epochs": -1}, "pretrain_epochs"),
    ("sdae", {"corrupt": ["blur:1"]}, "Unknown corruption"),
    ("pca", {"latent_dim": 0}, "latent_dim"),
])
def test_bad_sdae_and_pca_values_give_a_clear_error(family, model, match):
    with pytest.raises(ConfigError, match=match):
        build_run_config({"family": family, "model": model})


def test_pca_with_more_components_than_pixels_says_so(digits, tmp_path):
    with pytest.raises(ConfigError, match="at most 64 components"):
        train(build_run_config({"family": "pca", "model": {"latent_dim": 65}}), tmp_path / "p",
              progress=False, data=digits)


def test_evaluate_an_autoencoder_reports_pca_and_probes(tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train", "ae", "--data", "digits", "--latent-dim", "8", "--hidden", "32", "--epochs", "3",
                 "--lr", "3e-3", "--out", str(out), "--no-progress"]) == 0
    assert main(["train", "pca", "--data", "digits", "--latent-dim", "8", "--out", str(tmp_path / "pca"),
                 "--no-progress"]) == 0
    assert main(["evaluate", str(out), "--probe-train", "1000"]) == 0
    assert main(["evaluate", str(tmp_path / "pca"), "--probe-train", "1000"]) == 0
    ae = json.loads((out / "eval.json").read_text())
    pca = json.loads((tmp_path / "pca" / "eval.json").read_text())
    # The PCA baseline inside an autoencoder's evaluation is the PCA family's own result.
    assert ae["pca_reconstruction_sse"] == pytest.approx(pca["reconstruction_sse"], rel=1e-5)
    assert ae["linear_probe_accuracy_pca"] == pytest.approx(pca["linear_probe_accuracy"])
    assert ae["probe_train_images"] == 1000
    assert ae["knn_accuracy_pixels"] > 0.9  # 5-NN on raw digits pixels is a strong baseline
    for key in ["linear_probe_accuracy", "knn_accuracy", "reconstruction_sse"]:
        assert np.isfinite(ae[key])
    assert "knn_accuracy" in capsys.readouterr().out
