"""The zoo and the report for conditional models (issue 30): the cvae and cgan presets wherever the data have
labels, the findings "the conditional GAN makes the class asked for" and "Bayes' rule turns the generative model
into a classifier", the Bayes classifier's confusion matrix, and the conditional runs' samples one labelled row per
class (as `genmodels sample RUN --class all`)."""

import io
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import train
from genmodels.evaluation import evaluate
from genmodels.features import FeatureNetwork
from genmodels.models import FAMILIES, build_model
from genmodels.report import compare as compare_module
from genmodels.report.findings import findings
from genmodels.report.html import headline_table, render
from genmodels.report.summary import RunSummary
from genmodels.runs import load_run, sample
from genmodels.zoo import PRESETS, derive_plan, run_state
from genmodels.zoo.entries import ENTRY, vector_presets
from test_report import CHROMIUM_FLAGS, _chromium

ARTIFACTS = Path(os.environ.get("GENMODELS_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
CONDITIONAL = {"cvae": "vae", "cgan": "gan"}


def tiny_presets() -> dict:
    """The digits zoo's conditional presets, small and trained one epoch."""
    return {name: replace(PRESETS["digits"][name], model={**PRESETS["digits"][name].model, **small},
                          train={**PRESETS["digits"][name].train, "epochs": 1, "batch_size": 128})
            for name, small in {"cvae": {"latent_dim": 2, "hidden": [16]},
                                "cgan": {"arch": "mlp", "hidden": [16], "latent_dim": 4}}.items()}


# -- the presets ---------------------------------------------------------------------------------------------------

def test_the_fixed_presets_have_the_conditional_vae_and_gan_as_the_zoos_own_with_conditional_true():
    for data, presets in PRESETS.items():
        for name, base in CONDITIONAL.items():
            assert presets[name].family == presets[base].family
            assert presets[name].model == {**presets[base].model, "conditional": True}, (data, name)
            assert presets[name].train == presets[base].train
            assert presets[name].config(data).model.conditional is True


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 16)])
def test_derived_plans_have_the_conditional_presets_exactly_when_the_data_have_labels(shape):
    labelled = derive_plan(shape, 2000, 500, 10, labelled=True)
    unlabelled = derive_plan(shape, 2000, 500, 10, labelled=False)
    assert set(CONDITIONAL) <= set(labelled.presets) and not set(CONDITIONAL) & set(unlabelled.presets)
    assert set(labelled.presets) - set(unlabelled.presets) == set(CONDITIONAL)
    for name, base in CONDITIONAL.items():
        assert labelled.presets[name].model == {**labelled.presets[base].model, "conditional": True}
        assert name in labelled.seconds and any(line.split()[0] == name for line in labelled.lines())
    # The same budget, shared with them: no other run gets more epochs.
    assert all(p.train.get("epochs", 1) <= unlabelled.presets[n].train.get("epochs", 1)
               for n, p in labelled.presets.items() if n in unlabelled.presets)


def test_vector_data_get_no_conditional_preset():
    """The conditional entries' families take vectors, but a toy's label is its mixture component: left out."""
    assert all(FAMILIES[ENTRY[name].family].model.takes_vectors for name in CONDITIONAL)
    assert not set(CONDITIONAL) & set(vector_presets(2)) and not set(CONDITIONAL) & set(vector_presets(8, epochs=1))
    assert "vae" in vector_presets(2) and "gan" in vector_presets(2)


def test_the_bayes_classifier_of_a_zoo_costs_at_most_a_quarter_of_the_log_likelihood_estimate():
    from genmodels.zoo.entries import bayes_samples

    assert bayes_samples(200, 10) == 5 and bayes_samples(50, 10) == 1 and bayes_samples(200, 100) == 1
    assert all(bayes_samples(k, c) * c <= max(k / 4, c) for k in (5, 50, 200, 1000) for c in (2, 10, 47))


# -- the findings --------------------------------------------------------------------------------------------------

def _cgan(consistency: float, real: float = 0.95) -> RunSummary:
    return RunSummary("cgan", family="gan", conditional=True,
                      metrics={"class_consistency": consistency, "class_consistency_real": real})


def _cvae(bayes: float, probe: float = 0.96, classes: int = 10) -> RunSummary:
    confusion = np.eye(classes, dtype=int).tolist()
    return RunSummary("cvae", family="vae", conditional=True, metrics={"bayes_accuracy": bayes, "bayes_samples": 5,
                                                     "bayes_confusion": confusion,
                                                     "linear_probe_accuracy_pixels": probe})


def _claim(runs: list[RunSummary], start: str):
    found = [f for f in findings(runs) if f.text.startswith(start)]
    assert len(found) == 1, [f.text for f in findings(runs)]
    return found[0]


@pytest.mark.parametrize("consistency, verdict", [(0.93, "pass"), (0.86, "pass"), (0.85, "fail"), (0.3, "fail")])
def test_the_conditional_gan_makes_the_class_asked_for_is_judged_against_the_classifiers_accuracy(
        consistency, verdict):
    """The bar is 90% of the feature classifier's accuracy on real test images (0.95 here: 0.855)."""
    claim = _claim([_cgan(consistency)], "The conditional GAN makes the class asked for")
    assert claim.verdict == verdict
    assert f"{consistency:.3g}" in claim.text and "0.95" in claim.text and "0.855" in claim.text
    assert ("yes" if verdict == "pass" else "not here") in claim.text


def test_a_feature_classifier_near_chance_judges_no_class_asked_for():
    run = _cgan(0.16, real=0.11)
    run.metrics["class_histogram"] = [0.1] * 10
    claim = _claim([run], "The conditional GAN makes the class asked for")
    assert claim.verdict == "note" and "not judged" in claim.text and "0.11" in claim.text


def test_a_conditional_vae_is_judged_on_the_class_asked_for_too_and_an_unconditional_run_is_not():
    runs = [RunSummary("cvae", family="vae", conditional=True,
                       metrics={"class_consistency": 0.5, "class_consistency_real": 0.95}),
            RunSummary("gan", family="gan", metrics={"fid": 3.0})]
    assert _claim(runs, "The conditional VAE makes the class asked for").verdict == "fail"
    assert not [f for f in findings(runs) if "conditional GAN" in f.text]


def test_conditional_runs_are_left_out_of_the_claims_about_models_of_p_x():
    """A conditional run is given the label: its code need not hold the class, and its samples are class-balanced;
    the lecture's claims about codes and samples of p(x) compare the other runs, and a note says why."""
    probe = {"linear_probe_accuracy": 0.98, "linear_probe_accuracy_pixels": 0.97}
    runs = [RunSummary("ae", family="ae", metrics=probe),
            RunSummary("cvae", family="vae", conditional=True, metrics={
                "linear_probe_accuracy": 0.31, "linear_probe_accuracy_pixels": 0.97, "sharpness": 0.99}),
            RunSummary("vae", family="vae", metrics={"sharpness": 0.4}),
            RunSummary("gan", family="gan", metrics={"sharpness": 0.6})]
    assert _claim(runs, "Learned codes separate the classes").verdict == "pass"
    sharper = _claim(runs, "GAN samples are sharper than VAE samples")
    assert sharper.verdict == "pass" and "vae 0.4" in sharper.text
    note = _claim(runs, "The code of cvae probes at 0.31")
    assert note.verdict == "note" and "given the class" in note.text


@pytest.mark.parametrize("bayes, probe, verdict", [(0.97, 0.96, "pass"), (0.92, 0.96, "pass"), (0.90, 0.96, "fail"),
                                                   (0.15, 0.12, "fail")])
def test_bayes_rule_turns_the_generative_model_into_a_classifier_beside_the_linear_probe(bayes, probe, verdict):
    """Passes within 0.05 of the linear probe on the pixels and at least twice chance (0.2 for ten classes)."""
    claim = _claim([_cvae(bayes, probe)], "Bayes' rule turns the generative model into a classifier")
    assert claim.verdict == verdict
    assert f"{bayes:.3g}" in claim.text and f"{probe:.3g}" in claim.text and "K = 5" in claim.text


def test_bayes_accuracy_without_a_probe_is_a_note_with_its_number():
    run = _cvae(0.97)
    run.metrics.pop("linear_probe_accuracy_pixels")
    claim = _claim([run], "Bayes' rule turns the generative model into a classifier")
    assert claim.verdict == "note" and "0.97" in claim.text


# -- the confusion matrix ------------------------------------------------------------------------------------------

def test_the_report_shows_the_bayes_classifiers_confusion_matrix_with_the_class_names():
    confusion = [[7, 1, 0], [0, 5, 3], [2, 0, 9]]
    run = RunSummary("cvae", family="vae", classes=["cat", "dog", "owl"],
                     metrics={"bayes_accuracy": 21 / 27, "bayes_confusion": confusion})
    page = render([run, RunSummary("gan", family="gan", metrics={"fid": 1.0})])
    table = re.search(r"<table class=confusion>.*?</table>", page, re.S).group(0)
    assert "cvae: accuracy 0.7778" in table
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads[1:4] == ["cat", "dog", "owl"] and heads[4:] == ["cat", "dog", "owl"]  # columns, then rows
    rows = re.findall(r"<tr><th>[^<]*</th>(.*?)</tr>", table.split("<tbody>")[1])
    assert [re.findall(r">(\d+)</td>", row) for row in rows] == [[str(c) for c in r] for r in confusion]
    assert page.count("<table class=confusion>") == 1  # the run without one has none
    assert "<table class=confusion>" not in render([RunSummary("gan", family="gan", metrics={"fid": 1.0})])


def test_a_conditional_runs_likelihood_given_the_label_is_shown_but_never_marked_best():
    """log p(x|y) is not log p(x): the headline marks the cvae's value "given y" and ranks it against no one."""
    runs = [RunSummary("vae", family="vae", metrics={"log_likelihood_iw": -23.7, "fid": 1.3}),
            RunSummary("cvae", family="vae", conditional=True, metrics={"log_likelihood_iw": -20.6, "fid": 0.6}),
            RunSummary("vae2", family="vae", metrics={"log_likelihood_iw": -24.5, "fid": 1.5})]
    table = headline_table(runs)
    cells = re.findall(r"<td( class=best)?>(-?[0-9.]+)(<sup>[^<]*</sup>)?</td>", table)
    assert (" class=best", "-23.7", "") in cells and ("", "-20.6", "<sup>given y</sup>") in cells
    assert (" class=best", "0.6", "") in cells  # its samples' FID competes: class-balanced samples of p(x)
    assert "given y</sup>: a conditional model" in render(runs)


# -- a report of conditional runs, in Chromium ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def conditional_runs(tmp_path_factory, digits):
    """A conditional VAE and GAN trained one epoch on digits, evaluated with a tiny untrained feature network
    (class_consistency needs one; its value does not matter here), one torch thread."""
    root = tmp_path_factory.mktemp("conditional")
    torch.manual_seed(0)
    net = build_model("classifier", FAMILIES["classifier"].config(hidden=[8], feature_dim=8, classes=10), (1, 8, 8))
    features = FeatureNetwork(net.eval(), root / "features", accuracy=0.0, fingerprint="untrained")
    for name, preset in tiny_presets().items():
        train(preset.config("digits"), root / name, progress=False, data=digits)
        evaluate(load_run(root / name, data=digits), importance_samples=2, probe_train=200, parzen_samples=0,
                 quality_samples=100, features=features, bayes_samples=1)
    report = compare_module.compare([root / name for name in tiny_presets()], root / "report.html")
    return root, report


def test_a_finished_conditional_zoo_run_is_kept_not_refused_for_the_classes_training_recorded(conditional_runs):
    """Training records the data's classes and class counts in the run's config; the preset has none, and the zoo
    must still find the run done (and a longer preset resume it)."""
    root, _ = conditional_runs
    for name, preset in tiny_presets().items():
        assert run_state(root / name, preset.config("digits")) == "done"
        longer = replace(preset, train={**preset.train, "epochs": 2})
        assert run_state(root / name, longer.config("digits")) == "partial"


def test_the_reports_samples_of_a_conditional_run_are_the_labelled_rows_of_sample_class_all(conditional_runs, digits,
                                                                                          tmp_path):
    root, _ = conditional_runs
    run = load_run(root / "cgan", data=digits)
    picture = compare_module.summarise(run, "cgan", tmp_path)
    mine = sample(run, 80, tmp_path / "all.png", klass="all").read_bytes()
    assert picture.pictures["samples"] == mine  # ten rows of eight, each labelled
    with Image.open(io.BytesIO(mine)) as im:
        assert im.height > 9 * 8 and im.width < 2 * im.height


@pytest.mark.slow  # headless Chromium
def test_a_report_of_conditional_runs_reads_in_chromium(conditional_runs):
    """The page of a conditional VAE and GAN: every picture decodes, the findings and the confusion matrix are
    there. The screenshot is kept in test-artifacts/."""
    root, report = conditional_runs
    browser = _chromium()
    run = lambda *args: subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'profile'}",  # noqa: E731
                                        "--window-size=1366,900", *args, report.resolve().as_uri()],
                                       capture_output=True, text=True, timeout=120)
    dom = run("--dump-dom").stdout
    loaded, total = map(int, re.search(r'data-images-loaded="(\d+)/(\d+)"', dom).groups())
    assert loaded == total >= 8
    assert len(re.findall(r"<table class=\"?confusion\"?>", dom)) == 1
    # An untrained feature classifier (near chance) judges nothing: a note.
    assert re.search(r"<li class=\"?seen\"?>.*conditional GAN makes the class asked for: not judged", dom)
    assert re.search(r"<li class=\"?(pass|fail)\"?>.*turns the generative model into a classifier", dom)
    shot = ARTIFACTS / "zoo-conditional-report.png"
    shot.parent.mkdir(exist_ok=True)
    run(f"--screenshot={shot}")
    with Image.open(shot) as im:
        assert len(np.unique(np.asarray(im.convert("L")))) > 20
