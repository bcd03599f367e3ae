"""The checklist "add an option to a family" (docs/ARCHITECTURE.md), walked once: a field added to a family's
config gets its flag, help and shown default, parses into the run's config, and a resume with another value is
refused naming that flag, by the one naming rule of genmodels.flags. (That every flag's shown default is the
value a run gets is tests/test_architecture.py's.)"""

import dataclasses
import json
import re

import pytest
from pydantic import BaseModel, Field

from genmodels.cli import build_parser, main
from genmodels.engine import resume_run
from genmodels.errors import ConfigError
from genmodels.flags import config_flags, family_flags, help_default, typed_flag, typed_value
from genmodels.models import FAMILIES
from genmodels.models.vae import VAEConfig

TINY = ["--hidden", "32", "--latent-dim", "4", "--batch-size", "64", "--log-every", "5", "--no-progress"]


class WithOptions(VAEConfig):
    """The VAE's config with three options a maintainer just added."""

    smoothing: float = Field(0.25, ge=0, description="label smoothing of a test option")
    sharpen: bool = Field(False, description="a test switch", json_schema_extra={"flag": "--crisp"})
    note: str = Field("plain", description="a test setting",
                      json_schema_extra={"config_only": "set in a config file only, for this test"})


@pytest.fixture
def options(monkeypatch):
    """WithOptions registered as the VAE's config for one test."""
    monkeypatch.setitem(FAMILIES, "vae", dataclasses.replace(FAMILIES["vae"], config=WithOptions))


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


def test_a_new_field_gets_its_flag_help_and_shown_default(options, capsys):
    text = _help(["train", "vae"], capsys)
    assert "--smoothing SMOOTHING label smoothing of a test option (default 0.25)" in text
    assert "--crisp, --no-crisp a test switch (default off)" in text
    assert "--note" not in text and "config-only" not in text  # config-only: no flag
    flags = {f.key: f for f in family_flags("vae")}
    assert flags["smoothing"].flag == "--smoothing" and flags["sharpen"].flag == "--crisp" and "note" not in flags
    assert help_default(0.25) == "0.25" and help_default(False) == "off" and help_default([]) == "none"


def test_a_new_field_parses_into_the_run_config_and_resume_refuses_another_value(options, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "1", "--out", str(out), *TINY, "--smoothing", "0.5", "--crisp"]) == 0
    saved = json.loads((out / "config.json").read_text())["model"]
    assert (saved["smoothing"], saved["sharpen"], saved["note"]) == (0.5, True, "plain")
    capsys.readouterr()

    assert main(["train", "vae", "--out", str(out), "--resume", "--smoothing", "0.75", "--no-crisp"]) == 2
    err = capsys.readouterr().err
    assert "--smoothing 0.75 (model.smoothing) differs from the run's 0.5" in err, err
    assert "--no-crisp (model.sharpen) differs from the run's True" in err, err
    assert main(["train", "vae", "--out", str(out), "--resume", "--smoothing", "0.5"]) == 0  # the same value resumes

    # A config-only field has no flag: the refusal names its key, as a config file spells it.
    with pytest.raises(ConfigError, match=re.escape("note 'fancy' (model.note) differs from the run's 'plain'")):
        resume_run(out, progress=False, settings={"model": {"note": "fancy"}})


def test_the_refusal_spells_a_setting_as_the_flags_module_does(options):
    config = WithOptions()
    assert typed_flag(config, "smoothing", 0.75) == "--smoothing 0.75"
    assert typed_flag(config, "sharpen", True) == "--crisp" and typed_flag(config, "sharpen", False) == "--no-crisp"
    assert typed_flag(config, "note", "fancy") == "note 'fancy'"
    assert typed_flag(config, "hidden", [64, 32]) == "--hidden 64,32" and typed_value([]) == "none"


def test_a_field_of_a_type_the_command_line_cannot_take_is_a_type_error():
    class Odd(BaseModel):
        table: dict[str, int] = Field({}, description="no command-line form")

    with pytest.raises(TypeError, match="genmodels.flags"):
        config_flags("model", Odd)
