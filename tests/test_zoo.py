"""`genmodels zoo`: every family trained, evaluated and compared in one call; re-runs skip finished runs."""

import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels import GenmodelsError
from genmodels.report.glossary import GLOSSARY
from genmodels.zoo import PRESETS, run_state, run_zoo, summary_table

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
        assert len(presets) == 8
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
    assert sum(line.strip().startswith("trained") for line in lines) == 8
    assert "elbo" in results["vae"] and "parzen_log_likelihood" in results["gan"]
    table = summary_table(results)
    assert len(table.splitlines()) == 9 and "reconstruction_sse" in table

    weights = {n: (tmp_path / "zoo" / n / "model.safetensors").stat().st_mtime_ns for n in presets}
    lines.clear()
    run_zoo("digits", tmp_path / "zoo", progress=False, presets=presets, evaluate_options=TINY_EVAL, log=lines.append)
    assert sum("finished run kept" in line for line in lines) == 8
    assert weights == {n: (tmp_path / "zoo" / n / "model.safetensors").stat().st_mtime_ns for n in presets}

    # A longer preset resumes the run; a changed one is refused with the way out.
    longer = {**presets, "vae": replace(presets["vae"], train={**presets["vae"].train, "epochs": 2})}
    lines.clear()
    _, results = run_zoo("digits", tmp_path / "zoo", progress=False, presets=longer, evaluate_options=TINY_EVAL,
                         log=lines.append)
    assert sum("finished run kept" in line for line in lines) == 7 and sum("resumed" in line for line in lines) == 1
    assert run_state(tmp_path / "zoo" / "vae", longer["vae"].config("digits")) == "done"
    wider = {"vae": replace(presets["vae"], model={**presets["vae"].model, "latent_dim": 3})}
    with pytest.raises(GenmodelsError, match="model.latent_dim is 8, the preset has 3.*--overwrite"):
        run_zoo("digits", tmp_path / "zoo", progress=False, presets=wider, evaluate_options=TINY_EVAL, log=lines.append)


def test_unknown_dataset_is_one_sentence(tmp_path):
    with pytest.raises(GenmodelsError, match="presets for digits and fashion-mnist"):
        run_zoo("cifar", tmp_path / "zoo")
