"""bf16-mixed on the CPU for a model without convolutions: float32 throughout, with oneDNN doing every float32
matrix product in bf16 arithmetic (precision.bf16_products) instead of autocast's casts; convolutional models keep
autocast. Its results against autocast's and fp32's, the global setting restored, exact resume."""

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import train
from genmodels.checkpoint import read_safetensors
from genmodels.engine import resume_run
from genmodels.optim import StepContext
from genmodels.precision import bf16_products, products_in_bf16

CPU = torch.device("cpu")
NATIVE = torch.ops.mkldnn._is_mkldnn_bf16_supported()  # without it, oneDNN's products stay float32


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))


def _loss_and_grads(model, context):
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    model.zero_grad(set_to_none=True)
    with context:
        loss = (model(x).float() - x).pow(2).mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_bf16_products_match_autocast_and_fp32_within_bf16_rounding():
    model = _mlp()
    exact, exact_grads = _loss_and_grads(model, torch.autocast("cpu", enabled=False))
    mixed, mixed_grads = _loss_and_grads(model, torch.autocast("cpu", dtype=torch.bfloat16))
    products, products_grads = _loss_and_grads(model, bf16_products())
    assert products == pytest.approx(exact.item(), rel=1e-2) and products == pytest.approx(mixed.item(), rel=1e-2)
    for p, e, m in zip(products_grads, exact_grads, mixed_grads, strict=True):
        assert p.dtype == torch.float32  # the gradients of float32 weights, never cast
        # bf16 rounding puts both about 3% from float32's gradients (measured), and within 0.4% of each other
        assert (p - m).norm() <= 1e-2 * e.norm() and (p - e).norm() <= 5e-2 * e.norm()
    if NATIVE:  # the products really ran in bf16: not float32's bits
        assert not torch.equal(products, exact)


def test_the_process_wide_setting_is_restored_after_the_region():
    matmul = torch.backends.mkldnn.matmul
    original, matmul.fp32_precision = matmul.fp32_precision, "ieee"
    try:
        with bf16_products():
            assert matmul.fp32_precision == "bf16"
        assert matmul.fp32_precision == "ieee"
        with pytest.raises(RuntimeError), bf16_products():
            raise RuntimeError("a failing step")
        assert matmul.fp32_precision == "ieee"  # an fp32 run after it multiplies in float32
    finally:
        matmul.fp32_precision = original


def test_mlps_take_bf16_products_and_convolutional_models_autocast():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    assert products_in_bf16("bf16-mixed", CPU, _mlp())
    assert not products_in_bf16("bf16-mixed", CPU, conv)
    assert not products_in_bf16("fp16-mixed", CPU, _mlp()) and not products_in_bf16("fp32", CPU, _mlp())
    assert not products_in_bf16("bf16-mixed", torch.device("cuda"), _mlp())  # a GPU: autocast, as before
    assert isinstance(StepContext(conv, {}, precision="bf16-mixed").autocast(), torch.autocast)
    ctx = StepContext(_mlp(), {}, precision="bf16-mixed")
    with ctx.autocast():
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
        assert not torch.is_autocast_enabled("cpu")


def _weights(path):
    return read_safetensors(path)[0]


@pytest.mark.filterwarnings("ignore:After epoch")  # a collapse warning of the tiny VAE, not the subject here
def test_a_bf16_mlp_run_resumes_exactly(digits, tmp_path):
    config = tiny_vae_config(train={"epochs": 2, "precision": "bf16-mixed"})
    train(config, tmp_path / "straight", progress=False, data=digits)
    train(config.with_epochs(1), tmp_path / "resumed", progress=False, data=digits)
    resume_run(tmp_path / "resumed", 2, progress=False, data=digits)
    straight, resumed = _weights(tmp_path / "straight" / "model.safetensors"), _weights(
        tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
