"""Mixed precision (train.precision, --precision): autocast in the forward, float32 master weights, losses
and checkpoints, a gradient scaler for fp16, resuming in another precision; the CUDA paths' arguments."""

import json
import warnings

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import VAE, VAEConfig, losses, train
from genmodels.checkpoint import read_safetensors
from genmodels.cli import main
from genmodels.engine import resume_run
from genmodels.errors import CheckpointError, GenmodelsError
from genmodels.models import gan as gan_module
from genmodels.optim import StepContext
from genmodels.precision import autocast, check_precision, grad_scaler, restore_scaler, scaler_state

CPU = torch.device("cpu")


def _float_dtypes(path):
    tensors, _ = read_safetensors(path)
    return {v.dtype for k, v in tensors.items() if v.is_floating_point()}


def test_bf16_run_autocasts_the_forward_and_keeps_float32_everywhere_else(digits, tmp_path, monkeypatch):
    seen = {}

    def record(module, args, out):  # the encoder's first Linear, inside the training steps
        seen.setdefault("linear", out.dtype)

    def record_loss(module, args, out):
        if module.training:
            seen.setdefault("loss", out.loss.dtype)
            seen.setdefault("parts", {out.parts[k].dtype for k in out.parts})

    original = VAE.__init__

    def hooked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        next(m for m in self.encoder.modules() if isinstance(m, torch.nn.Linear)).register_forward_hook(record)
        self.register_forward_hook(record_loss)

    monkeypatch.setattr(VAE, "__init__", hooked)
    result = train(tiny_vae_config(train={"epochs": 1, "precision": "bf16-mixed"}), tmp_path / "run",
                   progress=False, data=digits)
    monkeypatch.undo()
    assert seen["linear"] == torch.float32  # an MLP on the CPU: float32 activations, bf16 products (bf16_products)
    assert seen["loss"] == torch.float32 and seen["parts"] == {torch.float32}  # losses in float32
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}  # master weights
    assert _float_dtypes(tmp_path / "run" / "model.safetensors") == {torch.float32}
    assert _float_dtypes(tmp_path / "run" / "checkpoint.safetensors") == {torch.float32}  # Adam's state too
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "bf16-mixed"
    test = [r for r in result.history if r["split"] == "test"][-1]
    fp32 = train(tiny_vae_config(train={"epochs": 1}), tmp_path / "fp32", progress=False, data=digits)
    fp32_test = [r for r in fp32.history if r["split"] == "test"][-1]
    assert test["nelbo"] == pytest.approx(fp32_test["nelbo"], rel=0.05)  # the same seed learns about as much


def test_losses_and_log_sum_exps_are_float32_under_autocast():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=[16]), (1, 8, 8)).eval()
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    exact = model.importance_weighted_bound(x, 20)
    torch.manual_seed(1)
    with autocast("bf16-mixed", CPU):
        assert model.decoder(torch.zeros(1, 2)).dtype == torch.bfloat16
        assert model.log_weights(x, 4).dtype == torch.float32
        bound = model.importance_weighted_bound(x, 20)
        logits = torch.randn(5, dtype=torch.bfloat16)
        assert losses.gan_discriminator_loss(logits, logits).dtype == torch.float32
        assert losses.bernoulli_log_likelihood(torch.randn(3, 64, dtype=torch.bfloat16), torch.rand(3, 64)).dtype \
            == torch.float32
    assert bound.dtype == torch.float32
    assert torch.allclose(bound, exact, rtol=0.02)


def test_fp16_mixed_scales_the_loss_and_resumes_with_its_scale(digits, tmp_path, monkeypatch):
    ctx = StepContext(torch.nn.Linear(2, 2), {}, precision="fp16-mixed")
    assert isinstance(ctx.scaler, torch.amp.GradScaler) and ctx.scaler.is_enabled()
    assert StepContext(torch.nn.Linear(2, 2), {}, precision="bf16-mixed").scaler is None  # bf16 needs none
    steps = []
    original = torch.amp.GradScaler.step
    monkeypatch.setattr(torch.amp.GradScaler, "step",
                        lambda self, opt, *a, **k: (steps.append(1), original(self, opt, *a, **k))[1])
    cfg = tiny_vae_config(train={"epochs": 1, "precision": "fp16-mixed"})
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    assert len(steps) == -(-len(digits.train) // 64)  # every optimizer step went through the scaler
    losses_ = [r["loss"] for r in result.history if r["split"] == "train"]
    assert losses_[-1] < losses_[0]
    _, meta = read_safetensors(tmp_path / "run" / "checkpoint.safetensors")
    scale, tracker = json.loads(meta["state"])["grad_scale"]
    assert 0 < scale <= 65536.0 and 0 <= tracker <= len(steps)  # 65536: the scaler's start; it halves on overflow
    assert _float_dtypes(tmp_path / "run" / "model.safetensors") == {torch.float32}
    # Resumed, the scaler continues from the saved scale and count, not from 65536 and 0.
    restored = []

    def restore(scaler, state, path):
        restore_scaler(scaler, state, path)
        restored.append(scaler_state(scaler)["grad_scale"])

    monkeypatch.setattr("genmodels.training.restore_scaler", restore)
    resume_run(tmp_path / "run", epochs=2, progress=False, data=digits)
    assert restored == [[scale, tracker]]


def test_a_damaged_gradient_scale_is_refused():
    scaler = grad_scaler("fp16-mixed", CPU)
    assert scaler_state(scaler)["grad_scale"] == [65536.0, 0]
    assert restore_scaler(scaler, {}, "ckpt") is False  # an fp32 run resumed in fp16: a fresh scaler
    assert restore_scaler(scaler, {"grad_scale": [1024.0, 3]}, "ckpt") and scaler.get_scale() == 1024.0
    with pytest.raises(CheckpointError, match="no valid gradient scale"):
        restore_scaler(scaler, {"grad_scale": [float("nan"), 0]}, "ckpt")


def test_a_run_resumes_in_another_precision_from_its_float32_checkpoint(digits, tmp_path):
    train(tiny_vae_config(train={"epochs": 1}), tmp_path / "run", progress=False, data=digits)
    result = resume_run(tmp_path / "run", epochs=2, progress=False, data=digits,
                        settings={"train": {"precision": "bf16-mixed"}})
    assert [r["epoch"] for r in result.history if r["split"] == "test"] == [1, 2]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "bf16-mixed"
    assert _float_dtypes(tmp_path / "run" / "checkpoint.safetensors") == {torch.float32}


def test_a_bad_precision_is_one_sentence(tmp_path, capsys):
    rc = main(["train", "vae", "--data", "digits", "--precision", "bf16", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "train.precision = 'bf16'" in err and "'bf16-mixed'" in err and "'fp32'" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(GenmodelsError, match="Unknown precision 'half'; use fp32, bf16-mixed, fp16-mixed or auto"):
        check_precision("half")


def test_gan_gradient_norms_only_on_logged_steps(digits, tmp_path, monkeypatch):
    from test_gan import tiny_gan_config

    calls = []
    original = gan_module._grad_norm
    monkeypatch.setattr(gan_module, "_grad_norm", lambda module: (calls.append(1), original(module))[1])
    result = train(tiny_gan_config(train={"log_every": 5}), tmp_path / "run", progress=False, data=digits)
    records = [r for r in result.history if r["split"] == "train"]
    batches = -(-len(digits.train) // 64)
    assert len(records) == batches // 5 + (batches % 5 > 0) < batches
    assert len(calls) == 2 * len(records)  # D's and G's norms, once per record, not once per step
    assert all("d_grad_norm" in r and "g_grad_norm" in r for r in records)


def test_channels_last_trains_and_resumes(digits, tmp_path):
    cfg = tiny_vae_config(model={"arch": "conv", "channels": [4]}, train={"epochs": 1, "channels_last": True})
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    conv = next(m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    resumed = resume_run(tmp_path / "run", epochs=2, progress=False, data=digits)
    assert [r["epoch"] for r in resumed.history if r["split"] == "test"] == [1, 2]


def test_cuda_paths_take_their_arguments_on_the_cpu(monkeypatch, tmp_path):
    """No GPU here: what the CUDA path builds, and its refusals, checked without one."""
    cuda = torch.device("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available": torch disables them, after taking the arguments
        ctx = autocast("bf16-mixed", cuda)
        assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
        assert autocast("fp16-mixed", cuda).fast_dtype == torch.float16
        assert grad_scaler("fp16-mixed", cuda)._device == "cuda"
    assert grad_scaler("bf16-mixed", cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    with pytest.raises(GenmodelsError, match=r"This GPU \(Tesla V100\) has no bfloat16; use --precision fp16-mixed"):
        check_precision("bf16-mixed", cuda)
    assert check_precision("fp16-mixed", cuda) == "fp16-mixed"
    with pytest.raises(GenmodelsError, match="no CUDA GPU is visible"):
        train(tiny_vae_config(train={"device": "cuda", "precision": "bf16-mixed"}), tmp_path / "run", progress=False)


def test_evaluate_runs_the_model_in_the_precision_asked(digits, tmp_path, capsys):
    train(tiny_vae_config(train={"epochs": 1, "precision": "bf16-mixed"}), tmp_path / "run", progress=False,
          data=digits)
    quick = ["--importance-samples", "20", "--probe-train", "0", "--parzen-samples", "0", "--quality-samples", "0"]
    found = {}
    for asked in (None, "fp32"):
        assert main(["evaluate", str(tmp_path / "run"), *quick, *(["--precision", asked] if asked else [])]) == 0
        found[asked] = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert found[None]["eval_precision"] == "bf16-mixed"  # by default the run's own precision
    assert found["fp32"]["eval_precision"] == "fp32"
    assert found[None]["log_likelihood_iw"] == pytest.approx(found["fp32"]["log_likelihood_iw"], rel=0.01)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), *quick, "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "genmodels: error: Unknown precision 'bf16'; use fp32, bf16-mixed, fp16-mixed or auto (--precision)."


def test_a_forward_after_a_step_in_the_same_autocast_region_sees_the_new_weights():
    """A GAN's train_step is one autocast region holding D's step and then G's forward through D: autocast's
    cache of bf16 weight copies must not outlive the step that changed the weights."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 8)
    ctx = StepContext(layer, {"main": torch.optim.SGD(layer.parameters(), lr=0.5)}, precision="bf16-mixed")
    x = torch.randn(4, 8)
    with ctx.autocast():
        ctx.step(layer(x).float().pow(2).sum())
        after = layer(x)
    with ctx.autocast():
        fresh = layer(x)
    assert torch.equal(after, fresh)


@pytest.mark.parametrize("precision", ["bf16-mixed", "fp16-mixed"])
@pytest.mark.parametrize("family, model", [
    ("gan", {"arch": "conv", "channels": [8], "latent_dim": 4}),  # BatchNorm, two optimizers, the moving average
    ("ae", {"latent_dim": 4, "hidden": [16], "code_activation": "sigmoid", "contractive": 0.1, "sparse_kl": 0.1}),
    ("sdae", {"layers": [16, 8], "pretrain_epochs": 1}),
])
def test_every_trained_family_learns_in_mixed_precision_with_float32_weights(digits, tmp_path, family, model,
                                                                             precision):
    from genmodels import build_run_config

    cfg = build_run_config({"family": family, "model": model, "data": {"source": "digits"},
                            "train": {"epochs": 2, "batch_size": 64, "precision": precision}})
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    test = [r for r in result.history if r["split"] == "test"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in test)
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}
    assert _float_dtypes(tmp_path / "run" / "checkpoint.safetensors") == {torch.float32}


def test_fp16_gradient_norms_are_of_the_true_gradients(digits):
    """The GAN's logged norm under fp16-mixed equals the norm without loss scaling (the scale is 65536)."""
    from genmodels.data import Batch
    from genmodels.models import build_model
    from test_gan import tiny_gan_config

    cfg = tiny_gan_config()
    norms = {}
    for precision in ("fp32", "fp16-mixed"):
        torch.manual_seed(0)
        model = build_model(cfg.family, cfg.model, (1, 8, 8))
        ctx = StepContext(model, model.make_optimizers(cfg.train, CPU), precision=precision)
        ctx.steps_to_log = 0
        with ctx.autocast():
            norms[precision] = model.train_step(Batch(digits.train.batch(slice(0, 64))), ctx)["d_grad_norm"]
    assert norms["fp16-mixed"].item() == pytest.approx(norms["fp32"].item(), rel=0.02)


def test_fp16_clips_the_unscaled_gradients():
    """With --grad-clip, fp16's gradients are unscaled before clipping: clipped while still scaled (by 1024
    here), the step would be 1024 times too short."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 1)
    start = [p.detach().clone() for p in layer.parameters()]
    ctx = StepContext(layer, {"main": torch.optim.SGD(layer.parameters(), lr=1.0)}, grad_clip=1.0,
                      precision="fp16-mixed")
    restore_scaler(ctx.scaler, {"grad_scale": [1024.0, 0]}, "test")  # 65536 would overflow fp16 at once
    with ctx.autocast():
        loss = (layer(torch.randn(16, 8)).float() - 10).pow(2).mean()  # a gradient norm of about 20
    ctx.step(loss)
    moved = torch.cat([(p - s).flatten() for p, s in zip(layer.parameters(), start)]).norm()
    assert 0.99 < moved <= 1.0 + 1e-4  # SGD with lr 1 moves by the clipped norm, 1
