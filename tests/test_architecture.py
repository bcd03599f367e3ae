"""The house plan of docs/ARCHITECTURE.md, checked: the layer contract (import-linter, as `lint-imports`),
one module spelling the run directory's file names, and one registry the command line derives from."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.cli import build_parser
from genmodels.config import DataConfig, TrainConfig
from genmodels.errors import GenmodelsError
from genmodels.flags import family_flags
from genmodels.models import FAMILIES, build_model, build_run_config
from genmodels.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genmodels"
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src_parent: Path) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts, on the genmodels package found under src_parent."""
    env = {**os.environ, "PYTHONPATH": str(src_parent)}
    return subprocess.run([str(LINT), "--no-cache", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                          env=env, cwd=src_parent)


def test_the_layer_contract_holds():
    done = _lint(SRC.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module, line, broken", [
    # an upward import, hidden under TYPE_CHECKING: it counts all the same
    ("errors.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import cli\n", "genmodels layers"),
    # a family module importing another family
    ("models/vae.py", "from . import gan\n", "model families"),
    # a cycle between two modules of one package: compare imports html, html now imports compare
    ("report/html.py", "from . import compare\n", "no import cycles"),
])
def test_the_layer_contract_fails_on_an_upward_import_or_a_cycle(tmp_path, module, line, broken):
    shutil.copytree(SRC, tmp_path / "genmodels")
    path = tmp_path / "genmodels" / module
    path.write_text(path.read_text() + "\n" + line)
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert re.search(rf"{broken}.*BROKEN", done.stdout.replace("\n", " ")), done.stdout


def test_only_rundir_spells_a_run_files_name():
    # "images" and "tensorboard" alone are too common words (an .npz key, a count, a --log choice); their files
    # are matched as "images/..." and "tensorboard/...".
    names = {RunDir.CONFIG, RunDir.WEIGHTS, RunDir.CHECKPOINT, RunDir.METRICS, RunDir.LOSS_PLOT, RunDir.EVAL,
             RunDir.FEATURES, RunDir.METRICS_CSV, RunDir.PROGRESS}
    assert set(RunDir.FILES) <= names
    spelled = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in names or node.value.startswith((f"{RunDir.IMAGES}/", f"{RunDir.TENSORBOARD}/")):
                    spelled.setdefault(path.relative_to(SRC).as_posix(), set()).add(node.value)
    assert set(spelled) == {"rundir.py"}, spelled


def _actions(argv: list[str]):
    """The argparse actions of the subcommand named by argv (e.g. ["train", "gan"])."""
    parser = build_parser()
    for word in argv:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return {a.dest: a for a in parser._actions}


def _parse_shown(flag, text: str):
    """The value a user gets by typing the default the help shows."""
    if text == "none":
        return None
    if flag.kind == "switch":
        return {"on": True, "off": False}[text]
    return [text] if flag.kind == "append" else flag.parse(text)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_flag_shows_the_default_a_run_really_gets(family):
    argv = ["train", family] if FAMILIES[family].trained_by_train_command else ["features", "train"]
    actions = _actions(argv)
    real = build_run_config({"family": family})  # the config a run gets from no flags at all
    for flag in family_flags(family):
        action = actions[flag.dest]  # every derived flag is on the command
        shown = re.search(r"\(default ([^;)]*)(; [^)]* on a 2-D toy --data)?\)$", action.help).group(1)
        value = getattr(getattr(real, flag.section), flag.key)
        value = list(value) if isinstance(value, tuple) else value
        got = _parse_shown(flag, shown)
        got = list(got) if isinstance(got, tuple) else got
        assert got == value or (got is None and value == []), (family, flag.flag, shown, value)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_config_field_has_a_flag_or_says_why_not(family):
    flagged = {(f.section, f.key) for f in family_flags(family)}
    sections = {"model": FAMILIES[family].config, "train": TrainConfig, "data": DataConfig}
    for section, config in sections.items():
        for key, info in config.model_fields.items():
            reason = (info.json_schema_extra or {}).get("config_only")
            assert (section, key) in flagged or (isinstance(reason, str) and len(reason) > 10), (family, section, key)
            assert info.description, f"{config.__name__}.{key} has no description, so its flag has no help"


def test_train_help_shows_the_family_defaults(capsys):
    for argv, expected in ((["train", "gan", "--help"], r"--lr LR\s+Adam learning rate \(default 0\.0002[;)]"),
                           (["train", "pca", "--help"], r"--epochs EPOCHS\s+passes over the training split "
                                                        r"\(default 1\)")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert re.search(expected, capsys.readouterr().out), argv


TINY = {"vae": {"hidden": [8], "latent_dim": 3}, "ae": {"hidden": [8], "latent_dim": 3}, "sdae": {"layers": [8, 3]},
        "pca": {"latent_dim": 3}, "gan": {"hidden": [8], "latent_dim": 3}, "classifier": {"hidden": [8], "classes": 10}}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_does_what_its_class_declares_and_refuses_the_rest(family):
    assert set(TINY) == set(FAMILIES)  # a new family needs a tiny config here
    model = build_model(family, build_run_config({"family": family, "model": TINY[family]}).model, (1, 8, 8)).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.inference_mode():
        if model.encodes:
            z = model.encode(x)
            assert z.shape == (5, 3) and model.decode(z).shape == x.shape and model.reconstruct(x).shape == x.shape
        if model.samples:
            assert model.sample(4).shape == (4, 1, 8, 8) and model.prior_sample(4).shape == (4, 3)
        if model.decodes:
            assert model.decode(torch.zeros(2, 3)).shape == (2, 1, 8, 8)
        for capable, call in ((model.encodes, lambda: model.encode(x)), (model.samples, lambda: model.sample(4))):
            if not capable and hasattr(model, "encode"):  # a generative model refuses, in one sentence
                with pytest.raises(GenmodelsError, match=f"This {family} model"):
                    call()
