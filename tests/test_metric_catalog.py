"""Every metric declared once (report/catalog.py): what `evaluate` writes is declared, and the report's tables,
glossary and headline and the zoo's printed summary follow the declarations ("Checklist: add a metric" in
docs/ARCHITECTURE.md, walked once below)."""

import re
from dataclasses import replace

import pytest
import torch

from genmodels import build_run_config, load_run, train
from genmodels.evaluation import evaluate
from genmodels.features import FeatureNetwork
from genmodels.models import FAMILIES, build_model
from genmodels.report import catalog
from genmodels.report.catalog import METRICS, Metric, headline_columns, summary_keys
from genmodels.report.findings import findings
from genmodels.report.html import RunSummary, headline_table, metric_table, render
from genmodels.zoo import summary_table

# One tiny run per family, and per variant whose evaluation writes other keys (the SDAE's supervised head).
RUNS = {
    "vae": ("vae", {"hidden": [8], "latent_dim": 3}),
    "ae": ("ae", {"hidden": [8], "latent_dim": 3}),
    "sdae": ("sdae", {"layers": [8, 3], "pretrain_epochs": 0}),
    "sdae-supervised": ("sdae", {"layers": [8, 3], "pretrain_epochs": 0, "finetune": "supervised"}),
    "pca": ("pca", {"latent_dim": 3}),
    "gan": ("gan", {"hidden": [8], "latent_dim": 3}),
    "classifier": ("classifier", {"hidden": [8], "classes": 10}),
    # the conditional VAE and GAN: Bayes' rule's accuracy, and class consistency (issue 30)
    "cvae": ("vae", {"hidden": [8], "latent_dim": 3, "conditional": True}),
    "cgan": ("gan", {"hidden": [8], "latent_dim": 3, "conditional": True}),
}
# Declared keys no tiny digits run writes: the probes' test images are counted only where the test split holds
# more than evaluation.PROBE_TEST images.
NEEDS_LARGER_DATA = {"probe_test_images"}
# Declared keys only a vector run writes (a 2-D toy's modes; the image metrics it skips): tests/test_vectors.py
# checks that a run on ring8 writes them and nothing undeclared.
VECTOR_ONLY = {"modes_covered", "modes_total", "high_quality_share", "mean_log_density", "skipped"}
# One epoch is too short for the samples to vary: the engine's warning says so, and is not what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore:After epoch 1 the .* samples look alike")


@pytest.fixture(scope="module")
def written(tmp_path_factory, digits):
    """What `evaluate` writes for each run of RUNS: one epoch each, scored in an untrained feature network's
    space (the sample-quality metrics need one; their values do not matter here)."""
    root = tmp_path_factory.mktemp("catalog")
    torch.manual_seed(0)
    net = build_model("classifier", build_run_config(
        {"family": "classifier", "model": {"hidden": [8], "feature_dim": 8, "classes": 10}}).model, (1, 8, 8))
    features = FeatureNetwork(net.eval(), root / "features", accuracy=0.0, fingerprint="untrained")
    out = {}
    for name, (family, model) in RUNS.items():
        config = build_run_config({"family": family, "model": model, "train": {"epochs": 1, "batch_size": 128}})
        train(config, root / name, progress=False, data=digits)
        out[name] = evaluate(load_run(root / name), importance_samples=5, probe_train=200, parzen_samples=100,
                             quality_samples=200, features=features)
    return out


def test_every_key_evaluate_writes_is_declared_and_every_declaration_is_written(written):
    assert {family for family, _ in RUNS.values()} == set(FAMILIES)  # a new family needs a tiny run here
    for name, results in written.items():
        assert set(results) <= set(METRICS), (name, set(results) - set(METRICS))
    seen = set().union(*written.values())
    assert set(METRICS) - seen == NEEDS_LARGER_DATA | VECTOR_ONLY  # no declaration of a key nobody writes


def test_the_report_of_every_family_links_only_declared_metrics(written):
    """Without a browser: every metric name in the page links to a glossary entry that its declaration wrote."""
    page = render([RunSummary(name, metrics=results, family=RUNS[name][0]) for name, results in written.items()])
    linked = set(re.findall(r'href="#g-([^"]+)"', page))
    defined = set(re.findall(r'<dt id="g-([^"]+)">', page))
    assert len(linked) > 30 and linked <= defined <= set(METRICS), linked - set(METRICS)
    assert catalog.UNKNOWN_MEANING not in page


def test_the_declarations_are_consistent():
    for key, m in METRICS.items():
        assert m.key == key and m.meaning.endswith((".", "?")) and m.kind in ("own", "reference", "info"), key
        assert m.better in (None, "lower", "higher", "ideal") and (m.better != "ideal" or m.ideal is not None), key
        assert m.kind == "own" or (m.better is None and not m.column and not m.summary), key
        assert not m.stands_in or m.column, key  # a stand-in stands in for a column
    for column, keys in headline_columns():
        assert sum(not METRICS[k].stands_in for k in keys) >= 1, column  # a column has a metric of its own


def test_the_zoo_prints_the_columns_it_printed_before():
    assert summary_keys() == ["reconstruction_sse", "linear_probe_accuracy", "knn_accuracy", "elbo",
                              "log_likelihood_iw", "parzen_log_likelihood", "fid", "precision", "recall", "sharpness",
                              "modes_covered", "high_quality_share", "test_error"]  # the modes: a toy's runs alone
    assert headline_columns() == [("reconstruction error", ("reconstruction_sse",)),
                                  ("linear probe", ("linear_probe_accuracy",)),
                                  ("log p(x)", ("log_likelihood_iw", "elbo")), ("FID", ("fid",)),
                                  ("precision", ("precision",)), ("recall", ("recall",)),
                                  ("modes covered", ("modes_covered",)),
                                  ("high-quality share", ("high_quality_share",))]


def _best(table: str, key: str) -> list[str]:
    """The values marked best in the metric table's row of `key`."""
    row = re.search(rf'<tr[^>]*><th><a href="#g-{key}".*?</tr>', table)[0]
    return re.findall(r"<td class=best[^>]*>([^<]*)</td>", row)


def test_a_flipped_direction_marks_the_other_run_best(monkeypatch):
    runs = [RunSummary("a", metrics={"fid": 3.0}), RunSummary("b", metrics={"fid": 5.0})]
    assert _best(metric_table(runs), "fid") == ["3"] and "\u2193" in metric_table(runs)
    assert re.search(r"<td class=best>3</td>", headline_table(runs))
    monkeypatch.setitem(METRICS, "fid", replace(METRICS["fid"], better="higher"))
    assert _best(metric_table(runs), "fid") == ["5"] and "\u2191" in metric_table(runs)
    assert re.search(r"<td class=best>5</td>", headline_table(runs))
    monkeypatch.setitem(METRICS, "fid", replace(METRICS["fid"], kind="reference", better=None, column=""))
    assert _best(metric_table(runs), "fid") == [] and "#g-fid" not in headline_table(runs)


def test_adding_a_metric_is_one_declaration(monkeypatch):
    """The checklist "add a metric", walked: a declaration alone puts the new key in the glossary, the full
    table with its arrow and best mark, the report's headline and the zoo's printed summary."""
    monkeypatch.setitem(METRICS, "toy_score", Metric(
        "toy_score", "A test-only score of how toy-like the samples are.", better="higher", ideal=1,
        unit="fraction", caveat="made up for a test", column="toy", summary=True))
    runs = [RunSummary("a", metrics={"toy_score": 0.25, "fid": 3.0}), RunSummary("b", metrics={"toy_score": 0.5})]
    page = render(runs)
    glossary = re.search(r'<dt id="g-toy_score">toy_score</dt><dd>(.*?)</dd>', page)[1]
    assert "A test-only score" in glossary and "Higher is better (ideal 1)" in glossary and "made up" in glossary
    table = metric_table(runs)
    assert _best(table, "toy_score") == ["0.5"] and "toy_score</a><span class=way> \u2191</span>" in table
    head = headline_table(runs)
    assert ">toy</a><span class=way> \u2191</span></th>" in head and "<td class=best>0.5</td>" in head
    assert summary_keys()[-1] == "toy_score"
    printed = summary_table({"a": {"family": "vae", "toy_score": 0.25}}, summary_keys())
    assert printed.splitlines()[0].split() == ["run", "family", "toy_score"]


def test_the_findings_compare_the_families_the_registry_declares(monkeypatch):
    """The lecture's GAN-against-VAE claims follow what the families' models declare (samples without an encoder
    against samples with one), not their names: a second adversarial family gets the same claims."""
    monkeypatch.setitem(FAMILIES, "wgan", replace(FAMILIES["gan"], name="wgan"))
    runs = [RunSummary("w", family="wgan", metrics={"sharpness": 0.9, "recall": 0.3}),
            RunSummary("v", family="vae", metrics={"sharpness": 0.5, "recall": 0.6})]
    texts = [f.text for f in findings(runs)]
    assert any(t.startswith("WGAN samples are sharper than VAE samples: yes, w 0.9 against v 0.5") for t in texts)
    assert any(t.startswith("VAE samples cover more of the data than WGAN samples (WGANs drop modes): yes")
               for t in texts)


def test_the_learned_codes_claim_leaves_out_pcas_own_code_alone():
    """Every code but the PCA baseline's own is a learned one (Model.has_pca_baseline), a code wider than the
    images too, which evaluation measures against no PCA (there is none that wide)."""
    probes = {"linear_probe_accuracy": 0.97, "linear_probe_accuracy_pixels": 0.95}
    runs = [RunSummary("pca", family="pca", code=8, metrics={**probes, "reconstruction_sse": 3.0}),
            RunSummary("wide", family="ae", code=100, metrics={**probes, "reconstruction_sse": 1.0}),
            RunSummary("ae", family="ae", code=8,
                       metrics={**probes, "reconstruction_sse": 2.0, "pca_reconstruction_sse": 3.0})]
    claim = [f.text for f in findings(runs) if f.text.startswith("Learned codes")]
    assert claim and "2 of 2" in claim[0] and "wide 0.97" in claim[0] and "ae 0.97" in claim[0]
    assert "pca 0.97" not in claim[0]
