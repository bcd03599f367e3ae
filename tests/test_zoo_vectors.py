"""`genmodels zoo` on vector data: every family that takes vectors on ring8, its report's scatters over the true
density, the modes in the headline and the lecture's claim on where the samples sit, judged on the numbers."""

import re
import subprocess
import warnings

import numpy as np
import pytest
import torch

from conftest import cli, one_sentence
from genmodels.models import FAMILIES
from genmodels.report.findings import findings
from genmodels.report.html import headline_table
from genmodels.report.summary import RunSummary
from genmodels.rundir import RunDir
from genmodels.zoo import ENTRIES, run_zoo
from genmodels.zoo.entries import VectorSizes, vector_presets
from test_report import CHROMIUM_FLAGS, _chromium

TINY_EVAL = {"importance_samples": 5, "probe_train": 200, "parzen_samples": 500, "quality_samples": 200}
TOY_SIZE = 300
CLAIM = "GAN samples sit on the modes; the VAE puts mass between them"


@pytest.fixture(scope="module")
def ring8_zoo(tmp_path_factory):
    """The ring8 zoo, every preset one epoch on 300 training points, one torch thread: (folder, report, results)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("zoo") / "ring8"
    with warnings.catch_warnings():  # a GAN and a VAE of one epoch look collapsed: no news
        warnings.simplefilter("ignore")
        report, results = run_zoo("ring8", out, progress=False, presets=vector_presets(2, epochs=1),
                                  toy_size=TOY_SIZE, evaluate_options=TINY_EVAL, log=lambda line: None)
    torch.set_num_threads(before)
    return out, report, results


def test_the_zoo_on_ring8_trains_every_family_that_takes_vectors_and_reports_scatters(ring8_zoo):
    out, report, results = ring8_zoo
    takes = [e.name for e in ENTRIES if FAMILIES[e.family].model.takes_vectors and not e.labels]  # no conditional
    assert list(results) == takes and len(takes) == 8
    for name in takes:
        cfg = RunDir(out / name).read_config()
        assert cfg.shape == (2,) and cfg.data.toy_size == TOY_SIZE and cfg.train.epochs == 1
    html = report.read_text()
    samplers = [n for n in takes if FAMILIES[results[n]["family"]].model.samples]
    encoders = [n for n in takes if FAMILIES[results[n]["family"]].model.encodes]
    assert samplers == ["vae", "gan"]
    # One scatter over the density per run: its samples where it samples, its reconstructions where it encodes.
    assert html.count('class="samples points"') == len(samplers)
    assert html.count('class="reconstructions points"') == len(encoders)
    assert "Samples over the data&#x27;s density" in html and "test originals above" not in html
    assert "genmodels explore" in html  # the explorer opens vector runs
    head = re.search(r"<table class=headline>.*?</table>", html, re.S).group(0)
    assert "modes covered" in head and "high-quality share" in head
    assert re.search(rf"<li class=(pass|fail|seen)><span class=icon>.</span> {CLAIM}: ", html)
    for name in samplers:
        assert results[name]["modes_total"] == 8 and 0 <= results[name]["modes_covered"] <= 8
        assert "fid" not in results[name]  # no feature network on vectors
        assert "kid" in results[name]
    assert not (out / "features").exists()


def test_the_vector_presets_follow_d_and_the_declared_capability(monkeypatch):
    wide = vector_presets(32)
    assert wide["vae"].model == {"latent_dim": 6, "hidden": [128, 128]} and wide["gan"].model == {"arch": "mlp"}
    assert VectorSizes(2).k == 2 and VectorSizes(1).k == 1 and VectorSizes(1000).hidden == 512
    assert wide["gan"].train["epochs"] > wide["ae"].train["epochs"]
    monkeypatch.setattr(FAMILIES["sdae"].model, "takes_vectors", False)
    assert "stacked-dae" not in vector_presets(2) and "vae" in vector_presets(2)


def test_a_budget_on_vector_data_is_one_sentence(tmp_path, capsys):
    assert cli("zoo", "--data", "ring8", "--budget", "1", "--out", tmp_path / "zoo") == 2
    one_sentence(capsys, "ring8 holds vectors", "--budget does not apply")
    assert not (tmp_path / "zoo").exists()


def _run(name: str, family: str, share: float | None, covered: int = 8) -> RunSummary:
    metrics = {} if share is None else {"high_quality_share": share, "modes_covered": covered, "modes_total": 8}
    return RunSummary(name, metrics={"family": family, **metrics}, family=family)


@pytest.mark.parametrize(("gan", "vae", "verdict", "word"), [(0.9, 0.4, "pass", "yes"), (0.3, 0.6, "fail", "not here"),
                                                             (0.5, 0.5, "note", "a tie")])
def test_the_claim_on_the_modes_is_judged_on_the_high_quality_share(gan, vae, verdict, word):
    found = [f for f in findings([_run("g", "gan", gan, 5), _run("v", "vae", vae)]) if CLAIM in f.text]
    assert len(found) == 1 and found[0].verdict == verdict, found
    assert f"{CLAIM}: {word}, g {gan:.3g} against v {vae:.3g}" in found[0].text
    assert "modes covered: g 5 of 8, v 8 of 8" in found[0].text


def test_the_claim_on_the_modes_needs_both_families_measured():
    assert not [f for f in findings([_run("g", "gan", 0.9), _run("v", "vae", None)]) if CLAIM in f.text]
    assert not [f for f in findings([_run("g", "gan", 0.9), _run("a", "ae", None)]) if CLAIM in f.text]
    table = headline_table([_run("g", "gan", 0.9, 7), _run("v", "vae", 0.2)])
    assert "modes covered" in table and "high-quality share" in table and "<td class=best>0.9</td>" in table


@pytest.mark.slow  # headless Chromium
def test_the_vector_report_renders_in_headless_chromium(ring8_zoo, tmp_path):
    _, report, _ = ring8_zoo
    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          report.resolve().as_uri()], capture_output=True, text=True, timeout=120).stdout
    n = report.read_text().count("<img ")
    assert n >= 16 and f'data-images-loaded="{n}/{n}"' in dom, re.findall(r"data-images-loaded=\"[^\"]*\"", dom)


@pytest.mark.slow  # headless Chromium through selenium
def test_the_vector_report_shows_its_scatters_and_progress_in_chromium_without_console_errors(ring8_zoo):
    from selenium.webdriver.common.by import By

    from test_explore import _browser, _until

    _, report, _ = ring8_zoo
    d = _browser()
    try:
        d.get(report.resolve().as_uri())
        loaded = _until(lambda: d.find_element(By.TAG_NAME, "body").get_attribute("data-images-loaded"), "the page")
        n = len(d.find_elements(By.TAG_NAME, "img"))
        assert loaded == f"{n}/{n}", loaded
        for picture in ("samples", "progress"):  # one of each for the VAE and the GAN, drawn at a readable size
            shown = d.find_elements(By.CSS_SELECTOR, f"img.{picture}.points")
            assert len(shown) == 2, picture
            for img in shown:
                assert img.is_displayed() and img.size["width"] >= 250 and img.size["height"] >= 150, img.size
                assert d.execute_script("return arguments[0].naturalWidth", img) > 0
        heading = "Samples of one fixed noise batch at a few epochs of training"
        assert any(h.text.startswith(heading) for h in d.find_elements(By.TAG_NAME, "h2"))
        assert [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        d.quit()


def test_a_pca_baseline_that_reconstructs_exactly_is_no_claim_to_beat():
    """A 2-D toy's 2-D code: PCA keeps everything, so the autoencoders are not judged against it."""
    def run(name: str, sse: float, pca: float) -> RunSummary:
        return RunSummary(name, metrics={"reconstruction_sse": sse, "pca_reconstruction_sse": pca}, family="ae")

    found = findings([run("square", 0.5, 1e-15), run("narrow", 0.5, 2.0)])
    claim = [f for f in found if f.text.startswith("Autoencoders reconstruct better than PCA")]
    assert len(claim) == 1 and claim[0].verdict == "pass" and "narrow 0.5 vs 2" in claim[0].text
    assert "square" not in claim[0].text
    notes = [f for f in found if "reconstructs exactly" in f.text]
    assert len(notes) == 1 and notes[0].verdict == "note" and "code size of square reconstructs" in notes[0].text
    assert not [f for f in findings([run("narrow", 0.5, 2.0)]) if "reconstructs exactly" in f.text]


def test_codes_that_tie_with_the_raw_vectors_are_a_note_not_a_failed_claim():
    """ring8's raw points already separate the modes linearly: a tie, said as one, in the data's own word."""
    def run(name: str, acc: float) -> RunSummary:
        return RunSummary(name, metrics={"linear_probe_accuracy": acc, "linear_probe_accuracy_pixels": 1.0},
                          family="ae", vectors=True)

    claim = "Learned codes separate the classes more linearly than the raw vectors"
    tied = [f for f in findings([run("a", 1.0), run("b", 1.0)]) if f.text.startswith(claim)]
    assert len(tied) == 1 and tied[0].verdict == "note" and ": a tie in all 2 (" in tied[0].text
    worse = [f for f in findings([run("a", 1.0), run("b", 0.9)]) if f.text.startswith(claim)]
    assert len(worse) == 1 and worse[0].verdict == "fail" and "not all: 0 of 2" in worse[0].text


def test_the_zoo_on_a_file_of_vectors_derives_its_presets_from_d(tmp_path):
    """Any vector data, not only a toy: a .npy of (400, 8) trains every entry at settings from D = 8, without
    the modes (no known density) and without a feature network."""
    rng = np.random.default_rng(0)
    path = tmp_path / "v.npy"
    np.save(path, (rng.normal(size=(400, 8)) * 3 + 10).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report, results = run_zoo(str(path), tmp_path / "zoo", progress=False, presets=vector_presets(8, epochs=1),
                                  evaluate_options=TINY_EVAL, log=lambda line: None)
    assert len(results) == 8 and results["vae"]["family"] == "vae" and "kid" in results["gan"]
    assert RunDir(tmp_path / "zoo" / "vae").read_config().model.latent_dim == VectorSizes(8).k == 3
    assert "modes_covered" not in results["gan"] and not (tmp_path / "zoo" / "features").exists()
    html = report.read_text()
    assert html.count('class="samples points"') == 2 and "modes covered" not in html


def test_the_zoo_command_passes_toy_size(monkeypatch, tmp_path):
    import genmodels.zoo
    from genmodels.cli import main

    seen = {}

    def fake_zoo(data, out, **options):
        seen.update(options, data=data)
        return tmp_path / "report.html", {}

    monkeypatch.setattr(genmodels.zoo, "run_zoo", fake_zoo)
    assert main(["zoo", "--data", "ring8", "--toy-size", "500", "--out", str(tmp_path / "z"), "--no-progress"]) == 0
    assert seen["toy_size"] == 500 and seen["data"] == "ring8"
