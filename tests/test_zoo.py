"""`genmodels zoo`: every family trained, evaluated and compared in one call; re-runs skip finished runs."""

import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import GenmodelsError
from genmodels.cli import main
from genmodels.models import build_model
from genmodels.report.catalog import METRICS as GLOSSARY
from genmodels.zoo import PRESETS, derive_plan, rescaled_epochs, run_state, run_zoo, summary_table
from genmodels.zoo import run as zoo_run
from test_report import CHROMIUM_FLAGS, _chromium

# Pictures the tests leave for a person to look at (CI may keep them): gitignored.
ARTIFACTS = Path(os.environ.get("GENMODELS_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))

TINY_EVAL = {"importance_samples": 5, "probe_train": 200, "parzen_samples": 200}


def tiny(presets):
    """The real presets, trained for one epoch (one pretraining epoch per sdae layer)."""
    out = {}
    for name, p in presets.items():
        model = {**p.model, "pretrain_epochs": 1} if p.family == "sdae" else p.model
        out[name] = replace(p, model=model, train={**p.train, "epochs": 1})
    return out


def test_every_preset_is_a_valid_config():
    for data, presets in PRESETS.items():
        assert len(presets) == 10  # the conditional vae and gan too (cvae, cgan): the data have labels
        assert {p.family for p in presets.values()} == {"pca", "ae", "sdae", "vae", "gan"}
        for p in presets.values():
            assert p.config(data).family == p.family


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The digits zoo with every preset trained for one epoch: (its folder, report, results, log lines)."""
    tmp_path = tmp_path_factory.mktemp("zoo")
    lines = []
    report, results = run_zoo("digits", tmp_path / "zoo", progress=False, presets=tiny(PRESETS["digits"]),
                              evaluate_options=TINY_EVAL, log=lines.append)
    return tmp_path, report, results, lines


@pytest.mark.slow  # headless Chromium
def test_the_zoo_report_reads_at_1366_pixels_in_chromium(zoo):
    """What a student opens first: the headline fits a 1366x768 screen, every metric row has its glossary
    entry, no baseline row is marked best. The screenshot is kept in test-artifacts/."""
    _, report, _, _ = zoo
    browser = _chromium()
    html = report.read_text()
    profile = report.parent / "chromium-profile"
    run = lambda *args: subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",  # noqa: E731
                                        "--window-size=1366,768", *args, report.resolve().as_uri()],
                                       capture_output=True, text=True, timeout=120)
    dom = run("--dump-dom").stdout
    right, width = map(int, re.search(r'data-headline-fits="(\d+)/(\d+)"', dom).groups())
    assert width <= 1366 and right <= width, (right, width)
    linked = set(re.findall(r'href="#g-([^"]+)"', dom))
    defined = set(re.findall(r'<dt id="g-([^"]+)">', dom))
    assert len(linked) > 20 and linked <= defined and linked <= set(GLOSSARY), linked - set(GLOSSARY)
    for row in re.findall(r"<tr class=\"?ref\"?>.*?</tr>", dom):
        assert "best" not in row, row
    assert "What these runs show" in dom and re.search(r"<li class=\"?(pass|fail)\"?>", dom)
    shot = ARTIFACTS / "zoo-report-1366x768.png"
    shot.parent.mkdir(exist_ok=True)
    run(f"--screenshot={shot}")
    with Image.open(shot) as im:
        assert im.size == (1366, 768) and len(np.unique(np.asarray(im.convert("L")))) > 20
    assert html.count("<details>") == 1  # the full table folded


def test_zoo_trains_evaluates_reports_and_skips_finished_runs(zoo):
    tmp_path, report, results, lines = zoo
    presets = tiny(PRESETS["digits"])
    assert report == tmp_path / "zoo" / "report.html"
    html = report.read_text()
    for name in presets:
        assert (tmp_path / "zoo" / name / "eval.json").is_file()
        assert f"<th>{name}<" in html
    command = "genmodels explore " + " ".join(str(tmp_path / "zoo" / name) for name in presets)
    assert f"<pre class=command>{command}</pre>" in html  # every zoo run opens in the explorer
    assert sum(line.strip().startswith("trained") for line in lines) == 10
    assert "elbo" in results["vae"] and "parzen_log_likelihood" in results["gan"]
    table = summary_table(results)
    assert len(table.splitlines()) == 11 and "reconstruction_sse" in table

    assert sum(line.startswith("[features] training") for line in lines) == 1  # the feature network, once

    weights = {n: (tmp_path / "zoo" / n / "model.safetensors").stat().st_mtime_ns for n in [*presets, "features"]}
    lines.clear()
    run_zoo("digits", tmp_path / "zoo", progress=False, presets=presets, evaluate_options=TINY_EVAL, log=lines.append)
    assert sum("finished run kept" in line for line in lines) == 10
    assert not any(line.startswith("[features]") for line in lines)  # the feature network reused, not retrained
    assert weights == {n: (tmp_path / "zoo" / n / "model.safetensors").stat().st_mtime_ns
                       for n in [*presets, "features"]}

    # A longer preset resumes the run; a changed one is refused with the way out.
    longer = {**presets, "vae": replace(presets["vae"], train={**presets["vae"].train, "epochs": 2})}
    lines.clear()
    _, results = run_zoo("digits", tmp_path / "zoo", progress=False, presets=longer, evaluate_options=TINY_EVAL,
                         log=lines.append)
    assert sum("finished run kept" in line for line in lines) == 9 and sum("resumed" in line for line in lines) == 1
    assert run_state(tmp_path / "zoo" / "vae", longer["vae"].config("digits")) == "done"
    wider = {"vae": replace(presets["vae"], model={**presets["vae"].model, "latent_dim": 3})}
    with pytest.raises(GenmodelsError, match="model.latent_dim is 8, the preset has 3.*--overwrite"):
        run_zoo("digits", tmp_path / "zoo", progress=False, presets=wider, evaluate_options=TINY_EVAL, log=lines.append)


def test_the_zoos_fid_and_kid_come_from_its_feature_network_and_rank_samples_below_real_images(zoo, digits):
    """FID and KID of the models that sample, measured in the feature network the zoo trained beside its runs
    (OUT/features), and worse than the training images' own distance to the test images in that space."""
    from genmodels import metrics
    from genmodels.features import load_features

    tmp_path, report, _, _ = zoo
    net = load_features(tmp_path / "zoo" / "features", digits)
    real = net.features(digits.test.batch(slice(0, len(digits.test))))
    other = net.features(digits.train.batch(slice(0, len(digits.train))))
    floor_fid = metrics.fid(real, other)
    floor_kid = metrics.kid(real, other, generator=torch.Generator().manual_seed(0)).kid
    html = report.read_text()
    for name in ("vae", "gan"):
        r = json.loads((tmp_path / "zoo" / name / "eval.json").read_text())  # as the other tests left the run
        assert r["features"] == net.name  # the zoo's own network, not runs/features/digits
        assert np.isfinite(r["fid"]) and np.isfinite(r["kid"])
        assert r["fid"] > floor_fid > 0 and r["kid"] > floor_kid + 3 * r["kid_std"]
        assert f"{r['fid']:.4g}"[:4] in html  # the report shows the number


def test_zoo_overwrite_retrains_its_runs_keeps_the_feature_network_and_the_users_files(zoo):
    tmp_path, _, _, _ = zoo
    out = tmp_path / "zoo"
    chosen = {name: preset for name, preset in tiny(PRESETS["digits"]).items() if name in ("pca", "vae")}
    (out / "vae" / "my_notes.txt").write_text("keep me")
    before = {n: (out / n / "model.safetensors").stat().st_mtime_ns for n in ("pca", "vae", "gan", "features")}
    lines = []
    run_zoo("digits", out, overwrite=True, progress=False, presets=chosen, evaluate_options=TINY_EVAL,
            log=lines.append)
    assert sum(line.strip().startswith("trained") for line in lines) == 2 and not any("kept" in ln for ln in lines)
    assert not any(line.startswith("[features]") for line in lines)
    after = {n: (out / n / "model.safetensors").stat().st_mtime_ns for n in before}
    assert after["pca"] != before["pca"] and after["vae"] != before["vae"]  # retrained from scratch
    assert after["gan"] == before["gan"] and after["features"] == before["features"]
    assert (out / "vae" / "my_notes.txt").read_text() == "keep me"
    history = [r for r in map(json.loads, (out / "vae" / "metrics.jsonl").read_text().splitlines())]
    assert [r["epoch"] for r in history if r["split"] == "test"] == [1]  # a new run, not the resumed one


def test_zoo_overwrite_flag_reaches_the_zoo(monkeypatch, tmp_path):
    import genmodels.zoo

    seen = {}

    def fake_zoo(data, out, **options):
        seen.update(options, data=data, out=out)
        return tmp_path / "report.html", {}

    monkeypatch.setattr(genmodels.zoo, "run_zoo", fake_zoo)
    assert main(["zoo", "--data", "digits", "--out", str(tmp_path / "z"), "--overwrite", "--no-progress"]) == 0
    assert seen["overwrite"] is True and seen["data"] == "digits"
    assert main(["zoo", "--data", "digits", "--out", str(tmp_path / "z"), "--no-progress"]) == 0
    assert seen["overwrite"] is False


def test_unknown_dataset_is_one_sentence(tmp_path):
    with pytest.raises(GenmodelsError, match="not a known name and no such file"):
        run_zoo("cifar", tmp_path / "zoo")


FAMILIES = {"pca": "pca", "ae": "ae", "denoising-ae": "ae", "contractive-ae": "ae", "sparse-ae": "ae",
            "stacked-dae": "sdae", "vae": "vae", "gan": "gan"}
LABELLED = {**FAMILIES, "cvae": "vae", "cgan": "gan"}  # data with labels: the conditional vae and gan too


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (3, 32, 32), (3, 12, 20)])
def test_derived_presets_follow_the_shape(shape):
    """The eight runs, the GAN a DCGAN from 16 px a side (arch auto's rule), every model built for
    the data's channels and giving images of its shape."""
    plan = derive_plan(shape, 200, 50, 0.2)
    assert {n: p.family for n, p in plan.presets.items()} == LABELLED
    assert plan.presets["gan"].model["arch"] == ("conv" if min(shape[1:]) >= 16 else "mlp")
    assert set(plan.seconds) == {"features", *LABELLED} and len(plan.lines()) == 12
    for p in plan.presets.values():
        cfg = p.config("data.npy")
        conditional = cfg.model.conditional if hasattr(cfg.model, "conditional") else False
        model = build_model(p.family, cfg.model.model_copy(update={"classes": 3}) if conditional else cfg.model, shape)
        labels = {"labels": torch.tensor([0, 2])} if conditional else {}  # training takes the classes from the data
        if model.encodes:
            x = torch.rand(2, *shape)
            assert model.reconstruct(x, **labels).shape == x.shape
        if model.samples:
            assert model.sample(2, **labels).shape == (2, *shape)


def test_a_larger_budget_never_gives_fewer_epochs_or_samples():
    budgets = [0.05, 0.2, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 240, 10_000]
    for shape, n_train, n_test in [((1, 28, 28), 8000, 2000), ((3, 32, 32), 50_000, 10_000), ((1, 16, 16), 200, 50)]:
        plans = [derive_plan(shape, n_train, n_test, b) for b in budgets]
        for name in FAMILIES:
            epochs = [p.presets[name].train.get("epochs", 1) for p in plans]
            assert epochs == sorted(epochs), (shape, name, epochs)
        for key in ("probe_train", "parzen_samples", "quality_samples", "importance_samples"):
            values = [p.evaluate[key] for p in plans]
            assert values == sorted(values), (shape, key, values)
    short, long = derive_plan((1, 28, 28), 8000, 2000, 10), derive_plan((1, 28, 28), 8000, 2000, 60)
    assert long.presets["gan"].train["epochs"] > short.presets["gan"].train["epochs"] > 1
    # A slower machine (the pilot's factor) never gets more epochs.
    slower = [derive_plan((1, 28, 28), 8000, 2000, 10, speed=v) for v in (0.5, 1, 2, 4)]
    for name in FAMILIES:
        epochs = [p.presets[name].train.get("epochs", 1) for p in slower]
        assert epochs == sorted(epochs, reverse=True), (name, epochs)
    # The GAN and the VAE get the largest shares of the training time (as do their conditional twins).
    seconds = {n: s for n, s in short.train_seconds.items() if n not in ("cvae", "cgan")}  # training alone
    assert sorted(seconds, key=seconds.get)[-2:] == ["vae", "gan"]


def test_the_time_left_is_re_split_as_the_zoo_goes():
    """The GAN and the VAE train first; a machine slower than the plan thought leaves the later runs fewer
    epochs, a faster one never more than planned; none gets 0."""
    plan = derive_plan((1, 28, 28), 8000, 2000, 10)
    assert list(plan.presets)[:2] == ["gan", "cgan"]  # labelled data: the conditional GAN's share is the GAN's
    planned, own = plan.presets["ae"].train["epochs"], plan.seconds["ae"] + plan.seconds["denoising-ae"]
    gan = plan.train_seconds["gan"]
    assert rescaled_epochs(plan, "ae", 1e9, {"gan": gan}) == planned
    assert rescaled_epochs(plan, "ae", own * 3, {"gan": 3 * gan}) < planned
    assert rescaled_epochs(plan, "ae", -60, {"gan": gan}) == 1


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf"), "10", True])
def test_a_bad_budget_is_one_sentence(tmp_path, budget):
    with pytest.raises(GenmodelsError, match=r"^--budget must be a number of minutes above 0, got .*; give e.g."):
        run_zoo(str(tmp_path / "none.npy"), tmp_path / "zoo", budget=budget)


@pytest.mark.parametrize("budget", ["0", "-2", "nan"])
def test_a_bad_budget_on_the_command_line_is_one_sentence(tmp_path, capsys, budget):
    assert main(["zoo", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "zoo"), f"--budget={budget}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "--budget must be a number of minutes above 0" in err


def test_fixed_presets_refuse_a_budget(tmp_path):
    with pytest.raises(GenmodelsError, match="digits has fixed presets.*drop it"):
        run_zoo("digits", tmp_path / "zoo", budget=5)


def _colour_folder(root: Path, n: int = 40, size: int = 16) -> Path:
    """n colour PNGs in two class folders: reddish squares and bluish discs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cls = i % 2
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        mask = (abs(yy - size / 2) < size / 4) & (abs(xx - size / 2) < size / 4) if cls == 0 else \
            (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
        img[mask, 0 if cls == 0 else 2] = 220
        (root / f"c{cls}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / f"c{cls}" / f"{i}.png")
    return root


@pytest.mark.parametrize("kind", ["npy", "colour-folder"])
def test_the_zoo_on_any_data_writes_a_report_with_every_family(tmp_path, kind, monkeypatch):
    """A small budget: presets derived from the data, the plan printed, every run trained and evaluated. The
    pilot runs, but the speed it reports is pinned: on a loaded machine a measured one could refuse the budget."""
    pilot = zoo_run.measure_speed
    monkeypatch.setattr(zoo_run, "measure_speed", lambda *args: (pilot(*args), 1.0)[1])
    if kind == "npy":
        rng = np.random.default_rng(0)
        data = tmp_path / "tiny.npy"
        np.save(data, (rng.random((200, 16, 16)) ** 2 * 255).astype(np.uint8))
        channels = 1
    else:
        data, channels = _colour_folder(tmp_path / "colour"), 3
    lines = []
    report, results = run_zoo(str(data), tmp_path / "zoo", progress=False, budget=1, log=lines.append)
    assert lines[0].startswith("[pilot]") and lines[1].startswith("[plan]") and f"16x16x{channels}" in lines[1]
    assert any(line.split()[:2] == ["gan", "gan"] and "conv" in line for line in lines)
    runs = 8 if kind == "npy" else 10  # labelled: the conditional vae and gan too
    assert lines[-1].startswith(f"[zoo] {runs} runs") and " min " in lines[-1]
    html = report.read_text()
    for name in FAMILIES if kind == "npy" else LABELLED:
        assert f"<th>{name}<" in html and (tmp_path / "zoo" / name / "eval.json").is_file()
    assert results["gan"]["family"] == "gan" and "parzen_log_likelihood" in results["vae"]
    if kind == "npy":  # no labels: no feature network, no probes, no FID
        assert not (tmp_path / "zoo" / "features").exists() and "fid" not in results["gan"]
    else:
        assert "fid" in results["gan"] and "linear_probe_accuracy" in results["ae"]
        assert "linear_probe_accuracy_pixels" in results["ae"]
    # The same call again keeps every run, or resumes one the pilot now finds time for: none is retrained.
    lines.clear()
    run_zoo(str(data), tmp_path / "zoo", progress=False, budget=1, log=lines.append)
    assert sum("finished run kept" in line or "resumed" in line for line in lines) == runs
    assert not any(line.strip().startswith("trained") for line in lines)
    assert not list((tmp_path / "zoo").glob(".pilot-*"))


def test_a_zoo_run_stopped_before_its_first_checkpoint_is_trained_again(tmp_path):
    """A run that kept only config.json (a full disk in its first epoch) reads as "new": the zoo trains it afresh
    instead of stopping on "already holds a run; pass --resume or --overwrite"."""
    presets = {"pca": tiny(PRESETS["digits"])["pca"]}
    lines = []
    run_zoo("digits", tmp_path / "zoo", progress=False, presets=presets, evaluate_options=TINY_EVAL,
            log=lines.append)
    run = tmp_path / "zoo" / "pca"
    for name in ("checkpoint.safetensors", "model.safetensors", "eval.json"):
        (run / name).unlink()
    assert run_state(run, presets["pca"].config("digits")) == "new"
    lines.clear()
    run_zoo("digits", tmp_path / "zoo", progress=False, presets=presets, evaluate_options=TINY_EVAL,
            log=lines.append)
    assert sum(line.strip().startswith("trained") for line in lines) == 1
    assert (run / "checkpoint.safetensors").is_file() and (run / "eval.json").is_file()
