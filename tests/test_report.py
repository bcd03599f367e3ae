"""`genmodels compare`: one self-contained HTML page from run directories, which it only reads."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import build_run_config, load_run, train
from genmodels.cli import main
from genmodels.evaluation import evaluate
from genmodels.report.catalog import METRICS as GLOSSARY
from genmodels.report.catalog import metric as entry
from genmodels.report.compare import compare
from genmodels.report.findings import findings
from genmodels.report.html import (
    RunSummary,
    best_columns,
    direction,
    format_value,
    headline_table,
    metric_table,
    render,
)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, digits):
    """A 1-epoch VAE (evaluated) and a PCA (not evaluated) on digits, one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    vae = build_run_config({"family": "vae", "model": {"latent_dim": 2, "hidden": [16]},
                            "train": {"epochs": 1, "batch_size": 64}})
    pca = build_run_config({"family": "pca", "model": {"latent_dim": 4}})
    train(vae, root / "vae", progress=False, data=digits)
    train(pca, root / "pca", progress=False, data=digits)
    evaluate(load_run(root / "vae"), importance_samples=5, probe_train=200, parzen_samples=200)
    yield root / "vae", root / "pca"
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def report(two_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert compare(list(two_runs), out) == out
    return out


def _snapshot(d):
    return {p.relative_to(d): p.stat().st_mtime_ns for p in sorted(d.rglob("*"))}


def test_report_is_one_self_contained_page_with_both_runs(report):
    html = report.read_text()
    assert list(report.parent.iterdir()) == [report]  # one file, nothing beside it
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # no external image, CSS or script; links within the page
    images = re.findall(r'<img src="data:image/png;base64,', html)
    # VAE: samples, reconstructions, interpolation, latent, curve; PCA (one pass, no training
    # loss logged): reconstructions, interpolation, latent.
    assert len(images) == 8
    assert "<th>vae<" in html and "<th>pca<" in html
    assert re.search(r"#g-elbo\".*?</th><td[^>]*>-?\d", html)  # the VAE's number in the table
    assert "pca: cannot sample" in html
    assert "pca has no eval.json" in html and "genmodels evaluate pca" in html


def test_compare_never_writes_into_run_directories(two_runs, tmp_path):
    before = [_snapshot(d) for d in two_runs]
    compare(list(two_runs), tmp_path / "r.html")
    assert [_snapshot(d) for d in two_runs] == before


def test_cli_compare_and_its_one_sentence_error(two_runs, tmp_path, capsys):
    assert main(["compare", *map(str, two_runs), "--out", str(tmp_path / "c.html")]) == 0
    assert (tmp_path / "c.html").is_file()
    assert main(["compare", str(two_runs[0]), str(tmp_path / "nope"), "--out", str(tmp_path / "d.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope does not exist" in err
    assert not (tmp_path / "d.html").exists()


def test_metric_directions_formatting_and_best_marks():
    assert direction("reconstruction_sse") == "lower" and direction("fid") == "lower"
    assert direction("log_likelihood_iw") == "higher" and direction("density") == "ideal"
    assert direction("knn_accuracy_pca") is None  # a baseline: a reference line, not a score
    assert direction("log_likelihood_iw_stderr") is None and direction("parzen_sigma") is None
    lower, ideal = entry("reconstruction_sse"), entry("density")
    assert best_columns([3.0, None, 1.0, 2.0], lower) == {2}
    assert best_columns([3.0, None, 1.0, 1.0], lower) == set()  # a tie marks nothing
    assert best_columns([1.219, 0.9], ideal) == {1}  # 1 is ideal: 0.9 is closer than 1.219
    assert best_columns([0.97, 0.5], entry("linear_probe_accuracy_pixels")) == set()  # a baseline
    assert best_columns([3.0, None], entry("fid")) == set()
    assert format_value(None) == "\u2013" and format_value(1438) == "1438"
    assert format_value(-123.456) == "-123.5" and format_value(0.912345) == "0.9123"
    assert format_value(0.00012) == "1.20e-04"
    assert format_value([0.1, 0.0, 0.2]) == "\u2584\u2581\u2588"  # a class histogram as a sparkline


def test_honest_marks_in_the_tables():
    """Only a run's own metrics compete: baselines never, a collapsed model's sample metrics never."""
    runs = [RunSummary("ae", metrics={"reconstruction_sse": 0.8, "pca_reconstruction_sse": 1.5, "images": 359}),
            RunSummary("cae", metrics={"reconstruction_sse": 0.3, "pca_reconstruction_sse": 0.2, "images": 359}),
            RunSummary("gan", metrics={"precision": 1.0, "recall": 0.01, "collapsed": True, "images": 359}),
            RunSummary("vae", metrics={"precision": 0.6, "recall": 0.1, "collapsed": False, "images": 359})]
    table = metric_table(runs)
    ref = re.search(r"<tr class=ref>.*?</tr>", table)[0]
    assert "pca_reconstruction_sse" in ref and "class=best" not in ref
    assert re.search(r"reconstruction_sse<.*?</th><td[^>]*>0.8</td><td class=best[^>]*>0.3</td>", table)
    precision = re.search(r"<tr><th><a href=\"#g-precision\".*?</tr>", table)[0]
    assert "class=best" not in precision  # the collapsed gan's 1.0 is not best, and vae is alone
    recall = re.search(r"<tr><th><a href=\"#g-recall\".*?</tr>", table)[0]
    assert "class=best" not in recall
    assert "The same in every run" in table and "images</a><span class=way></span> 359" in table
    head = headline_table(runs)
    assert head.count("class=best") == 1 and "collapsed" in head
    assert "FID" not in head and "#g-fid" not in head  # no run has it: no column, no dead link
    assert best_columns([0.97210001, 0.9721], entry("linear_probe_accuracy")) == set()  # equal as shown
    assert best_columns([0.9, 1.1], entry("density")) == set()  # equally far from the ideal 1
    same = metric_table([RunSummary("a", metrics={"coverage": 0.99}), RunSummary("b", metrics={"coverage": 0.99}),
                         RunSummary("c", metrics={"fid": 3.0})])
    assert "#g-coverage" in same.split("The same in every run")[0]  # a run's own metric keeps its row


def test_findings_are_checks_on_the_numbers():
    def runs(gan_sharp, vae_sharp):
        return [RunSummary("g", family="gan", metrics={"sharpness": gan_sharp, "recall": 0.8}),
                RunSummary("v", family="vae", metrics={"sharpness": vae_sharp, "recall": 0.2}),
                RunSummary("a", family="ae", epochs=(3, 10),
                           metrics={"reconstruction_sse": 0.5, "pca_reconstruction_sse": 0.9})]
    sharper = [f for f in findings(runs(0.9, 0.4)) if "sharper" in f.text]
    assert [f.verdict for f in sharper] == ["pass"] and "g 0.9 against v 0.4" in sharper[0].text
    assert [f.verdict for f in findings(runs(0.3, 0.4)) if "sharper" in f.text] == ["fail"]
    found = findings(runs(0.9, 0.4))
    assert any(f.verdict == "fail" and "cover more" in f.text and "v 0.2 against g 0.8" in f.text for f in found)
    assert any(f.verdict == "pass" and "a 0.5 vs 0.9" in f.text for f in found)
    assert any(f.verdict == "warn" and "a trained 3 of its 10 epochs" in f.text for f in found)
    assert not [f for f in findings(runs(0.9, 0.4)[2:]) if "sharper" in f.text]  # no GAN, VAE: no claim
    assert [f.verdict for f in findings(runs(5.0, 0.95)) if "sharper" in f.text] == ["fail"]  # above 1 is noise
    assert [f.verdict for f in found if "a trained 3" in f.text] == ["warn"]
    collapsed = [RunSummary("g", family="gan", metrics={"recall": 0.01, "collapsed": True}),
                 RunSummary("v", family="vae", metrics={"recall": 0.5})]
    assert [f.verdict for f in findings(collapsed) if "cover more" in f.text] == ["pass"]  # the case the claim is about
    assert any(f.verdict == "warn" and f.text.startswith("g collapsed") for f in findings(collapsed))
    tied = [RunSummary(n, metrics={"linear_probe_accuracy": 0.9}) for n in "ab"]
    assert not [f for f in findings(tied) if "probe best" in f.text]


def test_the_glossary_says_what_each_entry_promises():
    for key, e in GLOSSARY.items():
        assert e.meaning.endswith((".", "?")) and e.kind in ("own", "reference", "info"), key
        assert e.better in (None, "lower", "higher", "ideal") and (e.better != "ideal" or e.ideal is not None), key
        assert e.kind == "own" or e.better is None, key
    page = render([RunSummary("a", metrics={"fid": 3.0, "weird_new_metric": 1.0})])
    assert 'id="g-fid"' in page and "not Inception" in page
    assert re.search(r'id="g-weird_new_metric">weird_new_metric</dt><dd>A metric this report has no entry for', page)


def test_compare_refuses_runs_of_different_data(two_runs, tmp_path, capsys):
    import numpy as np

    images = np.random.default_rng(0).random((40, 8, 8), dtype=np.float32)
    np.save(tmp_path / "other.npy", images)
    other = build_run_config({"family": "pca", "model": {"latent_dim": 2},
                              "data": {"source": str(tmp_path / "other.npy")}})
    train(other, tmp_path / "other", progress=False)
    assert main(["compare", str(two_runs[0]), str(tmp_path / "other"), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "were trained on different data" in err and "compare runs of one dataset at a time" in err
    assert not (tmp_path / "x.html").exists()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed (make test installs it as root with apt-get: apt-get install chromium)")


def test_a_collapsed_run_is_flagged_and_its_verdict_never_marked_best():
    runs = [RunSummary("good", metrics={"precision": 0.6, "collapsed": False}),
            RunSummary("stuck", metrics={"precision": 1.0, "collapsed": True})]
    table = metric_table(runs)
    assert table.count("<div class=flag>collapsed</div>") == 1
    assert re.search(r"<th>stuck<div class=about></div><div class=flag>collapsed</div></th>", table)
    assert "stuck collapsed</b>" in table and "good collapsed" not in table
    assert direction("collapsed") is None and direction("sharpness") == "ideal" and direction("diversity") == "ideal"


@pytest.mark.slow  # headless Chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    url = report.resolve().as_uri()
    run = lambda *args, profile: subprocess.run(  # noqa: E731
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / profile}", *args, url],
        capture_output=True, text=True, timeout=120)
    dom = run("--dump-dom", profile="a").stdout
    n = report.read_text().count("<img ")
    assert f'data-images-loaded="{n}/{n}"' in dom, re.findall(r"data-images-loaded=\"[^\"]*\"", dom)
    shot = tmp_path / "shot.png"
    run("--window-size=1200,2000", f"--screenshot={shot}", profile="b")
    with Image.open(shot) as im:
        values = np.asarray(im.convert("L"))
    assert len(np.unique(values)) > 20  # not one flat colour
    assert 0.05 < (values < 240).mean() < 0.95  # drawn on, but not a black page


def test_the_page_gives_the_explore_command_for_the_runs_that_decode(report, two_runs):
    page = report.read_text()
    vae, pca = two_runs
    assert f"<pre class=command>genmodels explore {vae} {pca}</pre>" in page
    runs = [RunSummary("my vae", path="runs/my vae"), RunSummary("a classifier"), RunSummary("gan", path="runs/gan")]
    html = render(runs)
    assert "genmodels explore &#x27;runs/my vae&#x27; runs/gan</pre>" in html  # quoted for the shell
    assert "a classifier:" not in html and "<li>gan: <code>genmodels explore runs/gan</code></li>" in html
    assert "Explore in the browser" not in render([RunSummary("a classifier")])
