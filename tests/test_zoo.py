"""`genmodels zoo`: every family trained, evaluated and compared in one call; re-runs skip finished runs."""

from dataclasses import replace

import pytest

from genmodels import GenmodelsError
from genmodels.zoo import PRESETS, run_state, run_zoo, summary_table

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


def test_zoo_trains_evaluates_reports_and_skips_finished_runs(tmp_path):
    presets = tiny(PRESETS["digits"])
    lines = []
    report, results = run_zoo("digits", tmp_path / "zoo", progress=False, presets=presets,
                              evaluate_options=TINY_EVAL, log=lines.append)
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
