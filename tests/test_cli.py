"""Every command on a tiny run, through the real entry point."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genmodels.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "vae"
    rc = main(["train", "vae", "--data", "digits", "--latent-dim", "2", "--hidden", "32", "--epochs", "2",
               "--batch-size", "64", "--out", str(out), "--no-progress"])
    assert rc == 0
    return out


def test_train_writes_a_complete_run_directory(run_dir):
    for name in ["config.json", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl", "loss.png",
                 "images/samples.png"]:
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["family"] == "vae" and config["model"]["latent_dim"] == 2 and config["shape"] == [1, 8, 8]
    splits = {json.loads(line)["split"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()}
    assert splits == {"train", "test"}


def _png(path):
    with Image.open(path) as im:
        im.load()
        return im.size


def test_sample_writes_a_grid_of_n(run_dir, tmp_path):
    assert main(["sample", str(run_dir), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    w, h = _png(tmp_path / "s.png")
    assert w == h and w >= 4 * 32  # 4 x 4 cells, each upscaled to at least 32 px


def test_reconstruct_interpolate_latent_write_pngs(run_dir, tmp_path):
    assert main(["reconstruct", str(run_dir), "--out", str(tmp_path / "r.png")]) == 0
    w, h = _png(tmp_path / "r.png")
    assert w > h  # 8 per row; 4 rows: originals, reconstructions, originals, reconstructions
    for mode in ["linear", "slerp"]:
        assert main(["interpolate", str(run_dir), "--mode", mode, "--pairs", "3", "--steps", "5",
                     "--out", str(tmp_path / f"i_{mode}.png")]) == 0
        w, h = _png(tmp_path / f"i_{mode}.png")
        assert w > h
    assert main(["latent", str(run_dir), "--out", str(tmp_path / "l.png")]) == 0
    w, h = _png(tmp_path / "l.png")
    assert w > h  # scatter and decoded manifold side by side for a 2-D latent


def test_encode_writes_codes_and_labels(run_dir, tmp_path, digits):
    assert main(["encode", str(run_dir), "--split", "test", "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as f:
        assert f["codes"].shape == (len(digits.test), 2)
        assert (f["labels"] == digits.test.labels.numpy()).all()


def test_evaluate_prints_and_writes_eval_json(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--importance-samples", "50"]) == 0
    results = json.loads((run_dir / "eval.json").read_text())
    assert results["importance_samples"] == 50
    assert results["log_likelihood_iw"] >= results["elbo"] - 1.0
    assert "log_likelihood_iw" in capsys.readouterr().out


@pytest.mark.slow  # starts a subprocess
def test_python_m_entry_point_reports_errors_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genmodels", "sample", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_keeps_saved_config_and_extends_epochs(tmp_path):
    out = str(tmp_path / "run")
    base = ["train", "vae", "--hidden", "16", "--epochs", "2", "--batch-size", "200", "--out", out, "--no-progress"]
    assert main(base) == 0
    assert main(["train", "vae", "--out", out, "--resume", "--no-progress"]) == 0  # nothing left to do
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["epoch"] for r in records) == 2
    assert main(["train", "vae", "--out", out, "--resume", "--epochs", "3", "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["split"] == "test"] == [1, 2, 3]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["model"]["hidden"] == [16] and config["train"]["batch_size"] == 200
    assert main(["train", "vae", "--out", str(tmp_path / "none"), "--resume"]) == 2


def test_a_config_file_for_another_family_is_refused(tmp_path, capsys):
    (tmp_path / "gan.toml").write_text('family = "gan"\n[model]\nlatent_dim = 4\n')
    assert main(["train", "vae", "--config", str(tmp_path / "gan.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "is for family 'gan', not 'vae'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_reads_the_saved_config_once(tmp_path, monkeypatch):
    from genmodels.rundir import RunDir

    out = str(tmp_path / "run")
    assert main(["train", "vae", "--hidden", "16", "--epochs", "1", "--batch-size", "200", "--out", out,
                 "--no-progress"]) == 0
    reads = []
    original = RunDir.read_config
    monkeypatch.setattr(RunDir, "read_config", lambda self: (reads.append(self.path), original(self))[1])
    assert main(["train", "vae", "--out", out, "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert len(reads) == 1


def test_a_bug_inside_sample_propagates_instead_of_reading_as_cannot_sample(run_dir, tmp_path, monkeypatch):
    # Capabilities are declared, not found by catching errors: an error raised inside sample() (here a
    # GenmodelsError, the kind that used to be read as "this family cannot sample") reaches the caller.
    from genmodels.errors import GenmodelsError
    from genmodels.evaluation import evaluate
    from genmodels.models import VAE
    from genmodels.report.compare import compare
    from genmodels.runs import load_run

    def broken(self, n, generator=None):
        raise GenmodelsError("bug inside sample")

    monkeypatch.setattr(VAE, "sample", broken)
    run = load_run(run_dir)
    with pytest.raises(GenmodelsError, match="bug inside sample"):
        evaluate(run, importance_samples=2, probe_train=0, parzen_samples=10, quality_samples=0)
    with pytest.raises(GenmodelsError, match="bug inside sample"):
        compare([run_dir], tmp_path / "report.html")
    assert main(["sample", str(run_dir), "--out", str(tmp_path / "s.png")]) == 2  # one line, as every error


def test_a_command_the_family_cannot_do_names_the_families_that_can(tmp_path, capsys):
    out = str(tmp_path / "pca")
    assert main(["train", "pca", "--latent-dim", "4", "--out", out, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sample", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot sample" in err and "(vae, gan)" in err


def test_train_ae_with_composed_corruptions_and_penalties(tmp_path):
    out = tmp_path / "ae"
    assert main(["train", "ae", "--latent-dim", "4", "--hidden", "16", "--code-activation", "sigmoid",
                 "--corrupt", "mask:0.2", "--corrupt", "gauss:0.05", "--contractive", "0.01", "--sparse-kl", "0.01",
                 "--epochs", "1", "--batch-size", "200", "--out", str(out), "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "ae" and config["model"]["corrupt"] == ["mask:0.2", "gauss:0.05"]
    assert main(["reconstruct", str(out), "--out", str(tmp_path / "r.png")]) == 0
    assert main(["evaluate", str(out)]) == 0
    assert "reconstruction_sse" in json.loads((out / "eval.json").read_text())
    assert main(["sample", str(out)]) == 2  # an autoencoder has no prior to sample from


def test_commands_write_only_inside_the_run_directory(tmp_path, monkeypatch):
    """Every command with its default outputs, run from a working directory holding other files:
    afterwards the only new or changed files lie inside the run directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    run = tmp_path / "work" / "run"

    def snapshot():
        return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and run not in p.parents}

    before = snapshot()
    common = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--no-progress"]
    assert main(["train", "vae", *common, "--out", str(run)]) == 0
    for cmd in (["sample"], ["reconstruct"], ["interpolate"], ["encode"], ["latent"],
                ["evaluate", "--importance-samples", "5", "--parzen-samples", "50", "--quality-samples", "0"]):
        assert main([cmd[0], str(run), *cmd[1:]]) == 0, cmd
    assert snapshot() == before
    assert len(list(run.rglob("*.png"))) >= 5
