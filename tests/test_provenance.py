"""Where a run's data came from (data.source, data.fingerprint, shape), checked by every command that reads
them; resuming refuses settings it would ignore; evaluate finds its zoo's feature network; errors raised in
Python name the Python arguments beside the flags."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_vae_config
from genmodels import dataset as data_module
from genmodels import runs
from genmodels.cli import main
from genmodels.data import Dataset, DataSplits, fingerprint, load_data
from genmodels.engine import resume_run, train
from genmodels.errors import CheckpointError, ConfigError, DataError
from genmodels.evaluation import evaluate
from genmodels.features import find_features, train_features

pytestmark = pytest.mark.filterwarnings("ignore:After epoch:RuntimeWarning")  # a tiny VAE's samples look alike
TINY_CLI = ["--hidden", "32", "--latent-dim", "4", "--batch-size", "64", "--log-every", "5", "--no-progress"]
TINY_EVAL = {"importance_samples": 2, "probe_train": 0, "parzen_samples": 0, "quality_samples": 50}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` and a hash of its bytes (the lock file, which names its holder, by name only)."""
    return {str(p.relative_to(folder)): "" if p.name == ".genmodels.lock"
            else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv: list, *words: str) -> str:
    """The command exits 2 with one line `genmodels: error: ...` holding every word."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def saved_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.fixture(scope="module")
def digits16(digits):
    """digits scaled to 16x16, given in memory under a name genmodels cannot load."""
    def up(split: Dataset) -> Dataset:
        return Dataset(F.interpolate(split.stored(), size=16, mode="bilinear"), split.labels, split.name)
    return DataSplits(up(digits.train), up(digits.test), "digits16")


@pytest.fixture(scope="module")
def run16(digits16, tmp_path_factory):
    out = tmp_path_factory.mktemp("prov") / "run16"
    train(tiny_vae_config(train={"epochs": 1}), out, progress=False, data=digits16)
    return out


# -- 1. data provenance ----------------------------------------------------------------------------------
def test_in_memory_data_are_recorded_by_their_name_and_fingerprint(run16, digits16):
    config = saved_config(run16)
    assert config["data"]["source"] == "digits16"  # not the config's "digits"
    assert config["data"]["fingerprint"] == fingerprint(digits16)
    assert config["shape"] == [1, 16, 16]


def test_commands_on_an_in_memory_run_ask_for_its_data(run16, digits16, digits, capsys, tmp_path):
    before = snapshot(run16)
    for argv in (["reconstruct"], ["encode"], ["evaluate", "--importance-samples", "2"]):
        refused(capsys, [argv[0], run16, *argv[1:]], "trained on in-memory data named 'digits16'", "data=")
    refused(capsys, ["train", "vae", "--out", run16, "--resume", "--epochs", "2", "--no-progress"],
            "in-memory data named 'digits16'")
    assert snapshot(run16) == before
    # From Python, the same data given as data= serve every command; other data are refused with both shapes.
    run = runs.load_run(run16, data=digits16)
    assert runs.reconstruct(run, tmp_path / "r.png", n=4).exists()
    with pytest.raises(DataError, match=r"shape \(1, 8, 8\), but the run in .* \(1, 16, 16\); pass the data it was"):
        runs.load_run(run16, data=digits)


def test_resuming_in_memory_data_from_python(digits16, tmp_path):
    out = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 1}), out, progress=False, data=digits16)
    result = resume_run(out, 2, progress=False, data=digits16)
    assert max(r["epoch"] for r in result.history) == 2
    # train(resume=True) with the config it was trained with: its data.source "digits" is the in-memory data's name
    result = train(tiny_vae_config(train={"epochs": 3}), out, resume=True, progress=False, data=digits16)
    assert max(r["epoch"] for r in result.history) == 3 and saved_config(out)["data"]["source"] == "digits16"


def test_changed_data_of_the_same_shape_are_refused_naming_both_fingerprints(tmp_path, capsys):
    images = (np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8)
    np.save(tmp_path / "set.npy", images)
    out = tmp_path / "run"
    argv = ["train", "vae", "--data", str(tmp_path / "set.npy"), "--epochs", "1", "--out", str(out), *TINY_CLI]
    assert main(argv) == 0
    recorded = saved_config(out)["data"]
    assert recorded["source"] == str(tmp_path / "set.npy") and len(recorded["fingerprint"]) == 64
    images[0, 0, 0] ^= 1  # one pixel of one image
    np.save(tmp_path / "set.npy", images)
    now = fingerprint(load_data(str(tmp_path / "set.npy")))
    before = snapshot(out)
    for argv in (["reconstruct"], ["latent"], ["evaluate", "--importance-samples", "2"]):
        refused(capsys, [argv[0], out, *argv[1:]], f"fingerprint {now[:12]}",
                f"fingerprint {recorded['fingerprint'][:12]}", "are not the data the run in", "point data.source in")
    refused(capsys, ["train", "vae", "--out", out, "--resume", "--epochs", "2", "--no-progress"],
            f"fingerprint {now[:12]}", "resume it with the data it was trained on")
    assert snapshot(out) == before


def test_a_run_from_before_fingerprints_still_reads_its_data(run16, digits16, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run16, old)
    config = saved_config(old)
    del config["data"]["fingerprint"]
    (old / "config.json").write_text(json.dumps(config))
    assert runs.load_run(old, data=digits16).data is digits16
    resume_run(old, 2, progress=False, data=digits16)  # resuming records the fingerprint
    assert saved_config(old)["data"]["fingerprint"] == fingerprint(digits16)


def test_big_data_are_fingerprinted_by_a_bounded_sample(digits, monkeypatch):
    whole = fingerprint(digits)
    assert whole == "310030943d923899af7f871b338d2300fb49c9c92754e37c8233d6b61c7eeb7b"  # as before this change
    monkeypatch.setattr(data_module, "FINGERPRINT_WHOLE", 1000)
    monkeypatch.setattr(data_module, "FINGERPRINT_SAMPLE", 64 * 4 * 10)  # about 10 digits' bytes
    sampled = fingerprint(digits)
    assert sampled != whole and sampled == fingerprint(digits)
    train_images = digits.train.images.clone()
    changed = lambda images, labels=digits.train.labels: DataSplits(  # noqa: E731
        Dataset(images, labels, "t"), digits.test, "digits")
    train_images[1] += 0.01  # not among the ~8 evenly spaced training images hashed: unseen, as documented
    assert fingerprint(changed(train_images)) == sampled
    train_images[0] += 0.01  # the first image is always hashed
    assert fingerprint(changed(train_images)) != sampled
    labels = digits.train.labels.clone()
    labels[1] = (labels[1] + 1) % 10  # every label is hashed
    assert fingerprint(changed(digits.train.images, labels)) != sampled
    # What is read of the images: contiguous runs of stored rows, in storage order, within the sample's bytes.
    monkeypatch.setattr(data_module, "FINGERPRINT_SAMPLE", 64 * 256 * 4)  # 4 digits a block
    blocks = data_module._blocks(digits.train.images)
    starts = [b.data_ptr() for b in blocks]
    assert len(blocks) == 64 and all(len(b) == 4 for b in blocks) and starts == sorted(starts)
    assert sum(b.numel() * b.element_size() for b in blocks) <= 64 * 256 * 4


def test_an_empty_split_is_fingerprinted():

    empty = DataSplits(Dataset(torch.rand(5, 1, 4, 4), None, "a"), Dataset(torch.rand(0, 1, 4, 4), None, "b"), "mine")
    assert len(fingerprint(empty)) == 64


# -- 2. resume is explicit -------------------------------------------------------------------------------
def test_resume_refuses_settings_that_differ_from_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "1", "--out", str(out), *TINY_CLI]) == 0
    before = snapshot(out)
    refused(capsys, ["train", "vae", "--epochs", "2", "--latent-dim", "5", "--out", out, "--resume"],
            "--latent-dim 5 (model.latent_dim) differs from the run's 4", "resume without it", "new run")
    refused(capsys, ["train", "vae", "--epochs", "2", "--latent-dim", "5", "--lr", "0.01", "--out", out, "--resume"],
            "--latent-dim 5 (model.latent_dim) differs from the run's 4, and --lr 0.01 (train.lr) differs from the "
            "run's 0.001", "resume without them")
    refused(capsys, ["train", "vae", "--data", "mnist", "--out", out, "--resume"],
            "--data 'mnist' (data.source) differs from the run's 'digits'")
    refused(capsys, ["train", "vae", "--hidden", "64,32", "--out", out, "--resume"],
            "--hidden 64,32 (model.hidden) differs from the run's 32")
    refused(capsys, ["train", "gan", "--out", out, "--resume"], "is a vae run, not 'gan'",
            f"genmodels train vae --out {out} --resume")
    assert snapshot(out) == before
    # The same settings again, or none, resume; --epochs extends the run.
    assert main(["train", "vae", "--epochs", "2", "--out", str(out), "--resume", *TINY_CLI]) == 0
    assert saved_config(out)["train"]["epochs"] == 2 and saved_config(out)["model"]["latent_dim"] == 4


def test_resume_from_python_refuses_settings_that_differ(digits, tmp_path):
    out = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 1}), out, progress=False, data=digits)
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"--latent-dim 5 \(model.latent_dim\) differs from the run's 2"):
        resume_run(out, 2, progress=False, settings={"model": {"latent_dim": 5}})
    with pytest.raises(ConfigError, match=r"--batch-size 32 \(train.batch_size\) differs from the run's 64"):
        train(tiny_vae_config(train={"epochs": 2, "batch_size": 32}), out, resume=True, progress=False, data=digits)
    with pytest.raises(ConfigError, match=r"model.latent_dim"):  # a bad value is the config's own sentence
        resume_run(out, 2, progress=False, settings={"model": {"latent_dim": 0}})
    assert snapshot(out) == before


# -- 3. evaluate finds its zoo's feature network ---------------------------------------------------------
def test_evaluate_uses_the_feature_network_beside_the_run(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/features/digits here
    zoo = tmp_path / "zoo"
    net = train_features(digits, zoo / "features", epochs=1, progress=False,
                         model={"arch": "mlp", "hidden": [16], "feature_dim": 8}, train={"batch_size": 64})
    train(tiny_vae_config(train={"epochs": 1}), zoo / "vae", progress=False, data=digits)
    assert find_features(zoo / "vae", digits) == zoo / "features"
    results = evaluate(runs.load_run(zoo / "vae"), **TINY_EVAL)
    assert str(zoo / "features") in results["features"] and "fid" in results
    # A feature network beside the run but trained on other data is passed over for the default (absent here).
    other = DataSplits(digits.test, digits.train, "digits")
    assert find_features(zoo / "vae", other) is None
    assert net.fingerprint == saved_config(zoo / "vae")["data"]["fingerprint"]


# -- 4. errors raised in Python name the Python arguments --------------------------------------------------
def test_an_existing_run_is_refused_naming_arguments_and_flags(digits, tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 1}), out, progress=False, data=digits)
    with pytest.raises(CheckpointError, match=r"pass --resume \(resume=True\) to continue it or --overwrite "
                                              r"\(overwrite=True\) to replace it"):
        train(tiny_vae_config(), out, progress=False, data=digits)
    refused(capsys, ["train", "vae", "--out", out, *TINY_CLI], "--resume (resume=True)", "--overwrite (overwrite=True)")
    with pytest.raises(CheckpointError, match=r"without --resume \(resume=True\)"):
        resume_run(tmp_path / "empty")
    resume_run(out, 2, progress=False, data=digits)
    with pytest.raises(Exception, match=r"--epochs 1 would not extend it; pass a larger total \(epochs=\) or drop "
                                        r"--resume \(resume=True\)"):
        resume_run(out, 1, progress=False, data=digits)


def test_resume_takes_new_runtime_settings_and_a_new_run_records_its_own_data(tmp_path, digits):
    """--threads, --device, --log... say how a run is carried out, not what it computes: a resume may change
    them. A new run from a config copied from another run records its own data, never checks the copy's."""
    from genmodels.engine import resume_run
    from genmodels.rundir import RunDir

    out = tmp_path / "run"
    train(tiny_vae_config(), out, progress=False, data=digits)
    resume_run(out, 3, progress=False, data=digits, settings={"train": {"threads": 1, "log_every": 7}})
    saved = RunDir(out).read_config()
    assert saved.train.threads == 1 and saved.train.log_every == 7 and RunDir(out).trained_epochs() == 3
    copied = saved.model_copy(update={"data": saved.data.model_copy(update={"fingerprint": "0" * 64})})
    train(copied.with_epochs(1), tmp_path / "new", progress=False, data=digits)
    assert RunDir(tmp_path / "new").read_config().data.fingerprint == saved.data.fingerprint
