"""The zoo's folder is named in one place (genmodels.zoodir.ZooDir): the zoo writes its runs, feature network
and report where ZooDir says, `evaluate` finds the feature network there, and the command's help says so."""

from pathlib import Path

import genmodels.zoo.run as zoo_run
from genmodels.cli import main
from genmodels.data import fingerprint
from genmodels.features import find_features
from genmodels.rundir import RunDir
from genmodels.zoo import PRESETS, ZooDir, run_zoo


def test_the_zoo_writes_where_zoodir_says(tmp_path, monkeypatch):
    seen = {}

    def fake_features(splits, where, *args):
        seen["features"] = where
        return "a feature network"

    def fake_run_all(zoo, presets):
        seen["runs"] = [zoo.dir.run(name) for name in presets]
        return {}

    def fake_compare(runs, out, title):
        seen["compared"], seen["report"] = runs, out
        return out

    monkeypatch.setattr(zoo_run, "feature_network", fake_features)
    monkeypatch.setattr(zoo_run, "_run_all", fake_run_all)
    monkeypatch.setattr(zoo_run, "compare", fake_compare)
    out = tmp_path / "zoo"
    report, _ = run_zoo("digits", out, progress=False, presets={"pca": PRESETS["digits"]["pca"]}, log=lambda _: None)
    assert report == seen["report"] == ZooDir(out).report == out / ZooDir.REPORT
    assert seen["features"] == ZooDir(out).features == out / ZooDir.FEATURES
    assert seen["runs"] == seen["compared"] == [out / "pca"]


def test_evaluate_looks_for_the_feature_network_where_a_zoo_keeps_it(tmp_path, digits):
    zoo = ZooDir(tmp_path / "zoo")
    zoo.features.mkdir(parents=True)
    RunDir(zoo.features).write_features_record({"fingerprint": fingerprint(digits)})
    assert ZooDir.of_run(zoo.run("vae")).root == zoo.root
    assert find_features(zoo.run("vae"), digits) == zoo.features


def test_the_zoo_command_names_its_folder_as_zoodir_does(capsys):
    try:
        main(["zoo", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert f"{ZooDir.REPORT} (default {Path(ZooDir.DEFAULT)})" in text
