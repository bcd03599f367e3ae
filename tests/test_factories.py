"""Your own networks by import path (models/factories.py): the examples/ ResNet encoder and decoder in a VAE, the
residual discriminator in a GAN, trained through the command line and Python; resumed bit for bit; every command
on the run; rebuilt in a fresh process from config.json alone; the refusals, each one sentence before a run
directory is touched; no pickle and no import from a run directory.

genmodels never puts a folder on the import path: the tests put examples/' parent there themselves."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from conftest import cli, one_sentence, snapshot
from genmodels import ConfigError, build_run_config, load_run, resume_run, train
from genmodels.checkpoint import read_safetensors
from genmodels.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = {"encoder": "examples.resnet:encoder", "decoder": "examples.resnet:decoder",
            "generator": "examples.resnet:decoder", "discriminator": "examples.resnet:discriminator"}
NARROW = '{"width": 4}'  # the examples at 4 channels: a step on digits in milliseconds
VAE_FLAGS = ["--encoder", EXAMPLES["encoder"], "--encoder-kwargs", NARROW, "--decoder", EXAMPLES["decoder"],
             "--decoder-kwargs", NARROW, "--latent-dim", "2", "--batch-size", "200", "--no-progress"]


@pytest.fixture(autouse=True)
def examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # a step or two leaves samples alike, which the run rightly warns about
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def vae_config(epochs=1, train=None):
    return build_run_config({"family": "vae", "model": {
        "latent_dim": 2, "encoder": EXAMPLES["encoder"], "encoder_kwargs": {"width": 4},
        "decoder": EXAMPLES["decoder"], "decoder_kwargs": {"width": 4}},
        "train": {"epochs": epochs, "batch_size": 200, **(train or {})}})


def gan_config(epochs=1):
    return build_run_config({"family": "gan", "model": {
        "latent_dim": 4, "generator": EXAMPLES["generator"], "generator_kwargs": {"width": 4},
        "discriminator": EXAMPLES["discriminator"], "discriminator_kwargs": {"width": 4}},
        "train": {"epochs": epochs, "batch_size": 200}})


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A VAE with the example encoder and decoder, trained one epoch through the command line."""
    out = tmp_path_factory.mktemp("factories") / "vae"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(REPO))
        assert _quiet(cli, "train", "vae", *VAE_FLAGS, "--epochs", "1", "--out", out) == 0
    return out


def test_cli_run_records_the_factories_and_uses_them(vae_run):
    model = json.loads((vae_run / "config.json").read_text())["model"]
    assert model["encoder"] == EXAMPLES["encoder"] and json.loads(model["encoder_kwargs"]) == {"width": 4}
    assert model["decoder"] == EXAMPLES["decoder"] and json.loads(model["decoder_kwargs"]) == {"width": 4}
    assert model["factory_packages"] == {s: "examples (no installed distribution: found on the import path)"
                                         for s in ("encoder", "decoder")}
    vae = load_run(vae_run).model
    assert type(vae.encoder).__module__ == "torch.nn.modules.container"  # examples.resnet.encoder's Sequential
    assert type(vae.decoder).__name__ == "Decoder" and type(vae.decoder).__module__ == "examples.resnet"
    assert vae.mu_head.in_features == 2 * 4 * 4 * 4  # the example's features: 2 * width * ceil(8/2)^2


def test_every_command_works_on_a_factory_run(vae_run, tmp_path, capsys):
    for args in (["sample", "-n", "4"], ["reconstruct", "-n", "4"], ["interpolate", "--pairs", "2", "--steps", "3"],
                 ["encode"], ["latent"]):
        assert cli(*args, vae_run, "--out", tmp_path / f"{args[0]}.{'npz' if args[0] == 'encode' else 'png'}") == 0
    assert cli("evaluate", vae_run, "--importance-samples", "4", "--parzen-samples", "0", "--probe-train", "0",
               "--quality-samples", "0") == 0
    assert "elbo" in json.loads((vae_run / "eval.json").read_text())
    from genmodels.explore import load_runs

    explored = load_runs([vae_run])[0]
    described = explored.describe()
    assert described["dim"] == 2 and len(described["map"]["points"]) == explored.shown
    assert all(url.startswith("data:image/png") for url in explored.decode(torch.zeros(3, 2)))


@pytest.mark.slow
def test_run_rebuilds_in_a_fresh_process_from_config_json(vae_run):
    """A new interpreter, given only the run directory and the examples' parent on PYTHONPATH, decodes exactly what
    this one does."""
    z = torch.linspace(-1, 1, 6).reshape(3, 2)
    here = load_run(vae_run).model.decode(z)
    code = (f"import torch; from genmodels import load_run; m = load_run({str(vae_run)!r}).model; "
            f"print(m.decode(torch.linspace(-1, 1, 6).reshape(3, 2)).flatten().tolist())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", check=True)
    assert torch.equal(torch.tensor(json.loads(out.stdout)), here.flatten())


def test_resume_is_bit_identical(tmp_path, digits):
    straight = _quiet(train, vae_config(epochs=2), tmp_path / "a", progress=False, data=digits)
    _quiet(train, vae_config(epochs=1), tmp_path / "b", progress=False, data=digits)
    resumed = _quiet(resume_run, tmp_path / "b", epochs=2, progress=False, data=digits)
    del straight, resumed
    a, b = (read_safetensors(tmp_path / name / "model.safetensors")[0] for name in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gan_with_the_residual_discriminator_trains_through_python_and_the_cli(tmp_path, digits):
    run = _quiet(train, gan_config(), tmp_path / "py", progress=False, data=digits)
    del run
    gan = load_run(tmp_path / "py").model
    assert type(gan.discriminator[0][1]).__name__ == "ResidualBlock"  # (the factory's module, Flatten)
    assert gan.sample(3).shape == (3, 1, 8, 8) and gan.discriminator(torch.rand(5, 1, 8, 8)).shape == (5,)
    flags = ["--generator", EXAMPLES["generator"], "--generator-kwargs", NARROW, "--discriminator",
             EXAMPLES["discriminator"], "--discriminator-kwargs", NARROW, "--latent-dim", "4", "--batch-size", "200",
             "--epochs", "1", "--no-progress"]
    assert _quiet(cli, "train", "gan", *flags, "--out", tmp_path / "cli") == 0
    assert cli("sample", tmp_path / "cli", "-n", "4") == 0
    quick = ["--parzen-samples", "0", "--probe-train", "0", "--quality-samples", "0"]
    assert cli("evaluate", tmp_path / "cli", *quick) == 0
    assert "d_real" in json.loads((tmp_path / "cli" / "eval.json").read_text())


def test_autoencoder_takes_an_encoder_and_adds_its_code_layer(tmp_path, digits):
    config = build_run_config({"family": "ae", "model": {"latent_dim": 3, "encoder": EXAMPLES["encoder"],
                                                         "encoder_kwargs": {"width": 4}},
                               "train": {"epochs": 1, "batch_size": 200}})
    _quiet(train, config, tmp_path / "ae", progress=False, data=digits)
    ae = load_run(tmp_path / "ae").model
    assert ae.code_layer.in_features == 2 * 4 * 4 * 4 and ae.encode(torch.rand(5, 1, 8, 8)).shape == (5, 3)


def test_a_toml_table_names_the_factory(tmp_path, digits):
    toml = tmp_path / "vae.toml"
    toml.write_text(textwrap.dedent(f"""
        [model]
        latent_dim = 2
        [model.encoder]
        target = "{EXAMPLES['encoder']}"
        kwargs = {{ width = 4 }}
        [model.decoder]
        target = "{EXAMPLES['decoder']}"
        kwargs = {{ width = 4 }}
        [train]
        epochs = 1
        batch_size = 200
        """))
    assert _quiet(cli, "train", "vae", "--config", toml, "--out", tmp_path / "run", "--no-progress") == 0
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert (model["encoder"], model["decoder_kwargs"]) == (EXAMPLES["encoder"], '{"width": 4}')


def test_mixed_precision_and_the_scikit_learn_transformer_take_your_networks(tmp_path, digits):
    bf16 = vae_config(train={"precision": "bf16-mixed"})
    _quiet(train, bf16, tmp_path / "bf16", progress=False, data=digits)
    assert load_run(tmp_path / "bf16").model.encode(torch.rand(2, 1, 8, 8)).dtype == torch.float32
    from genmodels.estimator import AutoEncoderTransformer

    x = digits.train.images[:400].flatten(1).numpy()
    options = {"encoder": EXAMPLES["encoder"], "encoder_kwargs": {"width": 4}}
    codes = _quiet(AutoEncoderTransformer("vae", latent_dim=3, options=options, epochs=1, batch_size=200,
                                          image_shape=(1, 8, 8)).fit, x).transform(x[:7])
    assert codes.shape == (7, 3)


def test_the_providing_package_is_recorded_and_dropped_with_its_slot():
    import importlib.metadata

    from genmodels.models.factories import provider

    assert provider("torch.nn:Flatten") == f"torch {importlib.metadata.version('torch')}"  # an installed distribution
    config = build_run_config({"family": "vae", "model": {"decoder": EXAMPLES["decoder"],
                                                          "factory_packages": {"encoder": "mynets 1.0"}}})
    assert set(config.model.factory_packages) == {"decoder"}  # the encoder slot is empty: its record goes


def test_a_changed_package_version_warns_on_load(vae_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(vae_run, copy)
    saved = json.loads((copy / "config.json").read_text())
    saved["model"]["factory_packages"]["encoder"] = "examples 0.1"
    (copy / "config.json").write_text(json.dumps(saved))
    with pytest.warns(RuntimeWarning, match=r"encoder factory examples.resnet:encoder now comes from examples \(no "
                                            r"installed distribution.*made with examples 0.1"):
        _ = load_run(copy).model


# -- refusals: one sentence, nothing written ---------------------------------------------------------------------
@pytest.fixture
def user_nets(tmp_path, monkeypatch):
    """A package of the user's own, mynets, on the import path: networks of the right and the wrong shapes."""
    pkg = tmp_path / "lib" / "mynets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def flat(shape):  # images -> features (B, C*H*W): right for an encoder
            return nn.Flatten()

        def unflattened(shape):  # images -> (B, C, H, W): wrong for an encoder and for a discriminator
            return nn.Identity()

        def short_decoder(shape, latent_dim):  # codes -> (B, C, H, W - 1): one pixel short
            c, h, w = shape
            return nn.Sequential(nn.Linear(latent_dim, c * h * (w - 1)), nn.Unflatten(1, (c, h, w - 1)))
        """))
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    return pkg


@pytest.mark.parametrize("flags, words", [
    (["--encoder", "nosuchpackage.nets:encoder"], ["encoder factory nosuchpackage.nets:encoder", "nosuchpackage"]),
    (["--encoder", "mynets:unflattened"], ["encoder from mynets:unflattened", "(2, 1, 8, 8)", "(2, F)"]),
    (["--decoder", "mynets:short_decoder"], ["decoder from mynets:short_decoder", "(2, 1, 8, 7)", "(2, 1, 8, 8)"]),
    (["--encoder", "mynets:flat", "--encoder-kwargs", "[4]"], ["model.encoder_kwargs", "not a JSON object"]),
    (["--encoder", "mynets:flat", "--encoder-kwargs", "{width: 4}"], ["model.encoder_kwargs", "not valid JSON"]),
    (["--encoder", "mynets/flat.py"], ["model.encoder", "not an import path"]),
    (["--decoder", EXAMPLES["encoder"]], ["decoder factory examples.resnet:encoder failed when called",
                                          "latent_dim=2", "unexpected keyword argument 'latent_dim'"]),
])
def test_a_bad_factory_is_refused_in_one_sentence_before_the_run_directory(user_nets, tmp_path, capsys, flags,
                                                                              words):
    assert cli("train", "vae", *flags, "--latent-dim", "2", "--out", tmp_path / "run", "--no-progress") == 2
    one_sentence(capsys, *words)
    assert not (tmp_path / "run").exists()


def test_a_wrong_discriminator_is_refused_naming_the_slot_and_both_shapes(user_nets):
    config = build_run_config({"family": "gan", "model": {"discriminator": "mynets:unflattened"}})
    from genmodels.models import build_model

    with pytest.raises(ConfigError, match=r"discriminator from mynets:unflattened gives shape \(2, 1, 8, 8\).*"
                                          r"\(2,\) or \(2, 1\) is expected"):
        build_model("gan", config.model, (1, 8, 8))


def test_a_run_whose_factory_is_gone_is_refused_naming_it_and_its_package(user_nets, tmp_path, digits, monkeypatch):
    config = build_run_config({"family": "vae", "model": {"encoder": "mynets:flat", "latent_dim": 2},
                               "train": {"epochs": 1, "batch_size": 200}})
    _quiet(train, config, tmp_path / "run", progress=False, data=digits)
    monkeypatch.delitem(sys.modules, "mynets")
    (user_nets / "__init__.py").rename(user_nets.parent / "elsewhere.py")  # the package uninstalled
    before = snapshot(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"encoder factory mynets:flat cannot be imported.*package mynets"):
        _ = load_run(tmp_path / "run").model
    assert snapshot(tmp_path / "run") == before


@pytest.mark.slow
def test_a_module_in_the_run_directory_is_never_imported(tmp_path, digits, monkeypatch):
    """A config naming a module that only the run directory holds is refused; the module never runs."""
    config = build_run_config({"family": "vae", "model": {"latent_dim": 2, "hidden": [8]},
                               "train": {"epochs": 1, "batch_size": 200}})
    run = tmp_path / "run"
    _quiet(train, config, run, progress=False, data=digits)
    marker = tmp_path / "imported"
    (run / "runlocal.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef encoder(shape): pass\n")
    saved = json.loads((run / "config.json").read_text())
    saved["model"].update(encoder="runlocal:encoder")
    (run / "config.json").write_text(json.dumps(saved))
    monkeypatch.chdir(run)
    result = subprocess.run([sys.executable, "-m", "genmodels", "sample", str(run), "--out", str(tmp_path / "s.png")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                            cwd=tmp_path)
    assert result.returncode == 2 and "encoder factory runlocal:encoder cannot be imported" in result.stderr
    with pytest.raises(ConfigError, match="runlocal:encoder cannot be imported"):
        _ = load_run(run).model
    assert not marker.exists()


def test_a_factory_run_holds_no_pickle_and_refuses_one(vae_run, tmp_path):
    """Weights and checkpoint are safetensors, everything else JSON; a pickle in place of the weights is refused
    and never run, on a run whose networks come from a factory too."""
    import shutil

    for name in ("model.safetensors", "checkpoint.safetensors"):
        header = json.loads((vae_run / name).read_bytes()[8:8 + int.from_bytes((vae_run / name).read_bytes()[:8],
                                                                                "little")])
        assert "__metadata__" in header or header  # a safetensors header: JSON, not a pickle stream
        assert not (vae_run / name).read_bytes().startswith(b"\x80")  # pickle's PROTO opcode
    json.loads((vae_run / "config.json").read_text())
    copy = tmp_path / "copy"
    shutil.copytree(vae_run, copy)
    marker = tmp_path / "pickle_was_run"
    (copy / "model.safetensors").write_bytes(pickle.dumps(_Boom(str(marker)), protocol=2))
    with pytest.raises(CheckpointError, match="pickle"):
        _ = load_run(copy).model
    assert not marker.exists()


class _Boom:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
