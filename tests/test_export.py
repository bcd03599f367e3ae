"""`genmodels export`: every part of every family, run in onnxruntime on a batch of a size it was not traced with,
gives what PyTorch gives (model.decode, images in [0, 1]; model.encode, a VAE's posterior mean) to 1e-4; a part the
family lacks is one sentence. onnxruntime is in the test extra (pip install -e '.[test]'), so CI runs these."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli, one_sentence
from genmodels import GenmodelsError, build_run_config, load_run, train
from genmodels.export import export

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'genmodels[onnx]'")

REPO = Path(__file__).resolve().parent.parent
TINY = {
    # the VAE of the issue: examples/resnet.py's encoder and decoder (at 4 channels)
    "vae": {"latent_dim": 3, "encoder": "examples.resnet:encoder", "encoder_kwargs": {"width": 4},
            "decoder": "examples.resnet:decoder", "decoder_kwargs": {"width": 4}},
    "ae": {"hidden": [8], "latent_dim": 3, "loss": "bce"},
    "sdae": {"layers": [8, 3], "pretrain_epochs": 0},
    "pca": {"latent_dim": 3},
    "gan": {"hidden": [8], "latent_dim": 3, "arch": "mlp"},  # ema on: decode runs the moving average of G
}
# (the VAE's generator, the same graph as its decoder, is exported through the command line below)
PARTS = [(family, part) for family, parts in {"vae": ("decoder", "encoder"), "ae": ("decoder", "encoder"),
                                               "sdae": ("decoder", "encoder"), "pca": ("decoder", "encoder"),
                                               "gan": ("generator",)}.items() for part in parts]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.syspath_prepend(str(REPO))  # examples/ importable; genmodels itself never changes the import path
        warnings.simplefilter("ignore", RuntimeWarning)  # one epoch leaves samples alike, which the run says
        for family, model in TINY.items():
            config = build_run_config({"family": family, "model": model, "train": {"epochs": 1, "batch_size": 200}})
            train(config, root / family, progress=False, data=digits)
        yield {family: root / family for family in TINY}


@pytest.mark.parametrize("family, part", PARTS)
def test_the_onnx_file_computes_what_pytorch_does(runs, tmp_path, family, part):
    out = export(runs[family], part, tmp_path / f"{part}.onnx")
    model = load_run(runs[family]).model.eval()
    session = ort.InferenceSession(str(out))
    (given,), (returned,) = session.get_inputs(), session.get_outputs()
    rng = np.random.default_rng(0)
    if part == "encoder":
        inputs = rng.random((5, *model.shape), dtype=np.float32)  # images in [0, 1]
        expected = model.encode(torch.from_numpy(inputs))
    else:
        inputs = rng.standard_normal((5, model.latent_dim), dtype=np.float32)
        expected = model.decode(torch.from_numpy(inputs))
    assert (given.name, returned.name) == (("x", "z") if part == "encoder" else ("z", "x"))
    assert isinstance(given.shape[0], str)  # the batch dimension is dynamic: 5 here, 2 when traced
    got = session.run(None, {given.name: inputs})[0]
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got, expected.detach().numpy(), atol=1e-4, rtol=0)
    if part != "encoder" and family != "sdae" and family != "pca":  # (their decode is linear, mse-trained)
        assert got.min() >= 0 and got.max() <= 1  # images through the sigmoid, as decode gives them


def test_export_through_the_command_line(runs, tmp_path, capsys):
    out = tmp_path / "g.onnx"
    assert cli("export", runs["vae"], "--part", "generator", "--format", "onnx", "--out", out) == 0
    said = capsys.readouterr()
    assert said.out.strip() == f"wrote {out}" and said.err == ""  # none of the exporter's chatter
    z = np.random.default_rng(1).standard_normal((3, 3), dtype=np.float32)
    expected = load_run(runs["vae"]).model.decode(torch.from_numpy(z)).detach().numpy()
    np.testing.assert_allclose(ort.InferenceSession(str(out)).run(None, {"z": z})[0], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family, part", [("gan", "decoder"), ("gan", "encoder"), ("ae", "generator")])
def test_a_part_the_family_lacks_is_one_sentence(runs, tmp_path, capsys, family, part):
    assert cli("export", runs[family], "--part", part, "--out", tmp_path / "x.onnx") == 2
    one_sentence(capsys, f"has no {part}", "vae")  # names the families that have one
    assert not (tmp_path / "x.onnx").exists()


def test_an_unknown_format_is_one_sentence(runs, tmp_path):
    with pytest.raises(GenmodelsError, match="Unknown export format 'tflite'; use onnx"):
        export(runs["vae"], "decoder", tmp_path / "d.tflite", fmt="tflite")


def test_a_network_the_exporter_cannot_trace_is_one_sentence(capsys):
    from genmodels.export import to_onnx

    class Branchy(torch.nn.Module):
        def forward(self, z):
            return z if z.sum() > 0 else -z  # a branch on the values: nothing to trace

    with pytest.raises(GenmodelsError, match=r"^The decoder cannot be exported to ONNX \(.*\); a network with Python "
                                             r"control flow") as err:
        to_onnx(Branchy(), torch.zeros(2, 3), "decoder")
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert capsys.readouterr().err == ""  # the tracer's graph dumps are not the user's to read
