"""The registry is the one table of families (docs/ARCHITECTURE.md, "Families"): outside models/ nothing imports a
family's module (the import-linter contract), names a family by hand, or sniffs a family's attributes; and the
checklist "add a family", walked with a toy family, is all it takes for the command line, the config, build_model
and the engine to take a new family."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import Field

from genmodels.cli import build_parser, main
from genmodels.config import Strict
from genmodels.data import Dataset, DataSplits
from genmodels.engine import train
from genmodels.errors import ConfigError
from genmodels.models import FAMILIES, Family, GenerativeModel, StepOutput, build_model, build_run_config
from genmodels.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genmodels"
LINT = Path(sys.executable).with_name("lint-imports")
CONTRACT = "families through the registry"


# -- the import contract ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module, line, importer, imported", [
    ("evaluation.py", "from .models import gan\n", "genmodels.evaluation", "genmodels.models.gan"),
    # a module inside one of the packages the contract names
    ("explore/latent.py", "from ..models.vae import VAE\n", "genmodels.explore.latent", "genmodels.models.vae"),
])
def test_a_family_module_imported_past_the_registry_breaks_the_contract(tmp_path, module, line, importer, imported):
    shutil.copytree(SRC, tmp_path / "genmodels")
    path = tmp_path / "genmodels" / module
    path.write_text(path.read_text() + "\n" + line)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([str(LINT), "--no-cache", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    out = done.stdout.replace("\n", " ")
    assert done.returncode != 0
    assert re.search(rf"{CONTRACT}.*BROKEN", out), done.stdout
    assert f"{importer} -> {imported}" in done.stdout, done.stdout  # the import named, with its line


# -- no family named by hand outside models/ -------------------------------------------------------------------------

# The zoo's table of entries names the families it trains as data (a lecture is a list of chosen families), and so
# do the lessons, whose names issue 31 gives (linear-ae-spans-pca): the modules outside models/ that may, and only
# because that choice is their job.
EXEMPT = ("zoo/entries.py", "lessons/")


def _allowed(tree: ast.AST) -> set[int]:
    """ids of the constants that may name a family: docstrings (of a module, class or function), which describe,
    and parameters' defaults (the estimator's family="ae"), which are a choice offered to a caller, like a preset."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
        if isinstance(node, ast.arguments):
            found.update(id(d) for d in [*node.defaults, *node.kw_defaults] if d is not None)
    return found


def family_names_by_hand(source: str) -> list[str]:
    """Where `source` names families by hand, each as "line: text". Two kinds count:
    a string that IS a family's name (`family != "pca"`, `{"family": "classifier"}`, `flags("gan")`): a decision
    or a record keyed by a family, which belongs in a declaration of the model class or its Family; and a string
    naming two or more families as words, in any case ("pick a VAE or GAN run"): a hand-written list, which drifts
    from the registry (derive it: `families_that(...)`). Comments, docstrings and parameters' defaults may name
    families (`_allowed`)."""
    names = set(FAMILIES)
    words = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b", re.IGNORECASE)
    tree = ast.parse(source)
    skip = _allowed(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
            continue
        if node.value in names or len({w.lower() for w in words.findall(node.value)}) >= 2:
            found.append(f"{node.lineno}: {node.value!r}")
    return found


def test_the_scan_finds_a_family_named_by_hand():
    assert family_names_by_hand('if run.config.family != "pca":\n    pass\n') == ["1: 'pca'"]
    assert family_names_by_hand('x = {"family": "classifier"}\n') == ["1: 'classifier'"]
    message = 'm = f"{run} cannot; pick a VAE or GAN run."\n'
    assert family_names_by_hand(message) == ["1: ' cannot; pick a VAE or GAN run.'"]
    assert family_names_by_hand('"""A transformer around ae, sdae, pca or vae."""\n# vae, gan\nn = "organic"\n') == []
    assert family_names_by_hand('def fit(family="ae"):\n    return family == "ae"\n') == ["2: 'ae'"]


def test_no_module_outside_models_names_a_family_by_hand():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("models/") or rel.startswith(EXEMPT):
            continue
        if hits := family_names_by_hand(path.read_text()):
            found[rel] = hits
    assert not found, found


def test_no_module_outside_models_sniffs_a_familys_attributes():
    # what explore/latent.py once asked with getattr: declared now (samples_from_average, prior_bounds)
    sniffed = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith("models/"):
            for attr in ("generator_ema", "prior"):
                if re.search(rf"getattr\([^)]*[\"']{attr}[\"']", path.read_text()):
                    sniffed.setdefault(rel, []).append(attr)
    assert not sniffed, sniffed


# -- the checklist "add a family", walked once -------------------------------------------------------------------

class ToyConfig(Strict):
    """A linear autoencoder, the smallest family there is."""

    latent_dim: int = Field(2, ge=1, description="code size of the toy")


class Toy(GenerativeModel):
    family = "toy"
    encodes = True

    def __init__(self, config: ToyConfig, shape: tuple[int, int, int]):
        super().__init__(config, shape)
        d = shape[0] * shape[1] * shape[2]
        self.encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, config.latent_dim))
        self.decoder = torch.nn.Linear(config.latent_dim, d)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.shape)

    def forward(self, x: torch.Tensor) -> StepOutput:
        rec = (self.reconstruct(x) - x).pow(2).flatten(1).sum(1).mean()  # squared error per image
        return StepOutput(rec, {"loss": rec.detach(), "rec": rec.detach()})


# 3 epochs by default: a training default that differs from TrainConfig's, as a family may declare.
TOY = Family("toy", Toy, ToyConfig, "a toy linear autoencoder", {"epochs": 3})


@pytest.fixture
def toy(monkeypatch):
    """The toy family registered (step 2 of the checklist) for one test."""
    monkeypatch.setitem(FAMILIES, "toy", TOY)
    return TOY


def test_the_command_line_gets_train_toy_with_its_flags(toy, capsys):
    args = build_parser().parse_args(["train", "toy", "--out", "x", "--latent-dim", "4"])
    assert args.family == "toy" and 4 in vars(args).values()  # --latent-dim parsed as an int
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "toy", "--help"])
    shown = capsys.readouterr().out
    assert "genmodels train toy: a toy linear autoencoder." in shown
    assert re.search(r"--latent-dim LATENT_DIM\s+code size of the toy \(default 2\)", shown), shown
    assert re.search(r"--epochs EPOCHS\s+.*\(default 3\)", shown), shown  # the family's training default


def test_the_config_validates_and_build_model_builds_a_toy(toy):
    config = build_run_config({"family": "toy", "model": {"latent_dim": 3}})
    assert isinstance(config.model, ToyConfig) and config.train.epochs == 3
    with pytest.raises(ConfigError, match=r"model\.latent_dim"):
        build_run_config({"family": "toy", "model": {"latent_dim": 0}})
    model = build_model("toy", config.model, (1, 4, 4))
    assert isinstance(model, Toy) and model.encode(torch.rand(2, 1, 4, 4)).shape == (2, 3)


def test_a_toy_trains_through_the_engine_and_reloads(toy, tmp_path):
    gen = torch.Generator().manual_seed(0)
    data = DataSplits(Dataset(torch.rand(40, 1, 4, 4, generator=gen), None, "toy/train"),
                      Dataset(torch.rand(10, 1, 4, 4, generator=gen), None, "toy/test"), "toy-images")
    config = build_run_config({"family": "toy", "train": {"epochs": 1, "batch_size": 20, "log_every": 1}})
    result = train(config, tmp_path / "run", progress=False, data=data)
    assert [r["loss"] for r in result.history if "loss" in r and r.get("split") != "test"]
    model, saved = RunDir(tmp_path / "run").load_model()
    assert saved.family == "toy"
    x = data.test.images
    with torch.inference_mode():
        assert torch.equal(model.reconstruct(x), result.model.eval().reconstruct(x))


def test_genmodels_train_toy_runs_from_the_command_line(toy, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "digits", "--epochs", "1", "--batch-size", "500", "--latent-dim", "2",
                 "--out", str(out), "--no-progress"]) == 0
    assert RunDir(out).read_config().family == "toy"
