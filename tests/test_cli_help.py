"""The command line's help that helps: every flag's help and default, --version, and "did you mean" for a
misspelled flag, command or data name."""

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from genmodels.cli import build_parser, main
from genmodels.data import load_data
from genmodels.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, path=("genmodels",)):
    """(command words, parser) of the parser and of every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


# Flags whose default is simply "not given": no default to show.
_NO_DEFAULT = (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction, argparse._SubParsersAction)


def test_every_flag_of_every_subcommand_has_help_and_its_default():
    walked = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            where = f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{where} has no help"
            walked += 1
            if isinstance(action, _NO_DEFAULT) or not action.option_strings or action.required:
                continue
            # a derived flag (dest "section.key") keeps default None so a config file wins; its field has a default
            if action.default is not None or "." in action.dest:
                assert re.search(r"\(default |; default |default [^)]*\)", action.help), f"{where}: {action.help!r}"
    assert walked > 150  # every family's flags were seen


@pytest.mark.parametrize("argv, shown", [
    (["interpolate", "--help"], r"--mode MODE linear \| slerp.{0,120}?\(default linear\)"),
    (["evaluate", "--help"], r"--importance-samples IMPORTANCE_SAMPLES K of the.{0,120}?\(default 1000\)"),
    (["reconstruct", "--help"], r"--split SPLIT train \| test.{0,120}?\(default test\)"),
    (["train", "vae", "--help"], r"--hidden HIDDEN MLP hidden widths.{0,120}?\(default 512\)"),
    (["train", "vae", "--help"], r"--data DATA digits \| fashion-mnist .{0,120}?\(default digits\)"),
])
def test_help_shows_the_defaults(capsys, argv, shown):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 0
    assert re.search(shown, " ".join(capsys.readouterr().out.split()))  # lines joined as argparse wrapped them


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"genmodels {declared}"


@pytest.mark.parametrize("argv, said", [
    (["train", "vae", "--latent_dim", "2", "--out", "x"],
     "genmodels train vae: error: unrecognized arguments: --latent_dim 2; did you mean --latent-dim?"),
    (["train", "vae", "--latent_dim", "2", "--hiden", "8", "--out", "x"],
     "did you mean --latent-dim for --latent_dim and --hidden for --hiden?"),
    (["train", "gan", "--lr-shedule=cosine", "--out", "x"], "did you mean --lr-schedule?"),
    (["train", "vea"], "invalid choice 'vea'; did you mean vae? (choose from vae, ae, sdae, pca, gan)"),
    (["feature", "train"], "invalid choice 'feature'; did you mean features?"),
    (["evaluate", "RUN", "--importance_samples", "5"], "did you mean --importance-samples?"),
])
def test_misspellings_get_a_suggestion(capsys, argv, said):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_an_unlike_flag_gets_no_suggestion(capsys):
    with pytest.raises(SystemExit):
        main(["train", "vae", "--foo", "--out", "x"])
    assert capsys.readouterr().err.strip().endswith("error: unrecognized arguments: --foo")


def test_a_misspelled_data_name_gets_a_suggestion(tmp_path, capsys):
    with pytest.raises(DataError, match=r"'fashion_mnist' is not a known name .*; did you mean fashion-mnist\?"):
        load_data("fashion_mnist")
    with pytest.raises(DataError) as err:
        load_data("nothing-like-it")
    assert "did you mean" not in str(err.value)
    assert main(["train", "vae", "--data", "Digits", "--out", str(tmp_path / "run")]) == 2
    assert "did you mean digits?" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run directory is made
