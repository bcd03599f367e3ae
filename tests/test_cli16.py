"""Issue 16: help that helps (every flag's help and default, --version, "did you mean"), TOML errors that name
the file and every mistake, the training log (epoch lines, csv, tensorboard), and the packaging."""

import argparse
import csv
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


def test_evaluate_no_progress_draws_no_bar(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)  # as on a terminal
    capsys.readouterr()
    args = ["evaluate", str(run), "--parzen-samples", "0", "--quality-samples", "0", "--probe-train", "0",
            "--importance-samples", "5"]
    assert main([*args, "--no-progress"]) == 0
    assert "log p(x), K=5" not in capsys.readouterr().err


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


# -- TOML errors --------------------------------------------------------------------------------------------
def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_toml_file_with_several_mistakes_names_the_file_and_every_mistake(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text('[model]\nlatent_dim = -1\nhidden = "x"\n[train]\nepochs = 0\n')
    assert main(["train", "vae", "--config", str(toml), "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"Bad config in {toml}: " in err
    for mistake in ("model.latent_dim = -1", "model.hidden = 'x'", "train.epochs = 0"):  # model's and train's
        assert mistake in err, mistake
    assert not (tmp_path / "run").exists()


def test_a_toml_file_and_flags_are_both_named(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text("[model]\nlatent_dim = -1\n")
    assert main(["train", "vae", "--config", str(toml), "--lr", "-1", "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"Bad config in {toml} and the command-line flags: " in err and "model.latent_dim = -1" in err
    assert "train.lr = -1.0" in err
    assert main(["train", "vae", "--latent-dim", "0", "--out", str(tmp_path / "run")]) == 2
    assert "Bad config in the command-line flags: model.latent_dim = 0" in _error_line(capsys)


def test_a_toml_file_of_another_family_is_refused(tmp_path, capsys):
    toml = tmp_path / "gan.toml"
    toml.write_text('family = "gan"\n[model]\nlatent_dim = 4\n')
    assert main(["train", "vae", "--config", str(toml), "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"{toml} is for family 'gan', not 'vae'" in err and "genmodels train gan" in err
    assert not (tmp_path / "run").exists()


# -- the training log ---------------------------------------------------------------------------------------
TINY = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "200", "--log-every", "3"]


def _train(out, *extra) -> int:
    return main(["train", "vae", *TINY, "--out", str(out), *extra])


@pytest.mark.parametrize("terminal, flags", [(False, []), (False, ["--no-progress"]), (True, ["--no-progress"])])
def test_without_a_terminal_or_with_no_progress_each_epoch_prints_one_line_and_no_bar(
        tmp_path, capsys, monkeypatch, terminal, flags):
    monkeypatch.setattr("genmodels.progress._terminal", lambda stream: terminal)
    assert _train(tmp_path / "run", "--epochs", "3", *flags) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err  # no tqdm frames
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert re.fullmatch(r"epoch 3/3  test loss \d+\.\d{3}  .*diversity \d\.\d{3}  \d+\.\d s", lines[-1]), lines[-1]
    assert "run directory:" in out


def test_on_a_terminal_the_bar_shows_and_writes_the_epoch_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("genmodels.progress._terminal", lambda stream: True)
    assert _train(tmp_path / "run", "--epochs", "2") == 0
    out, err = capsys.readouterr()
    assert "\r" in err and "step" in err  # tqdm's frames, on stderr
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"]


def _records(run: Path) -> list[dict]:
    return [__import__("json").loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _csv_matches_the_log(run: Path) -> list[str]:
    """metrics.csv holds metrics.jsonl's records, one row each, under the union of their keys; its header."""
    with open(run / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows, header = list(reader), reader.fieldnames
    records = _records(run)
    assert len(rows) == len(records) > 0
    keys = list(dict.fromkeys(k for r in records for k in r))
    assert header == keys  # every key once, in the order first seen
    for row, record in zip(rows, records):
        for key in header:
            if key not in record:
                assert row[key] == "", (key, row)
            elif isinstance(record[key], str):
                assert row[key] == record[key]
            else:
                assert float(row[key]) == record[key], (key, row[key], record[key])
    return header


def test_log_csv_writes_every_record_as_a_row_and_resume_keeps_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "2", "--log", "csv") == 0
    header = _csv_matches_the_log(run)
    assert header[:3] == ["step", "epoch", "split"] and {"loss", "kl", "diversity"} <= set(header)
    records = _records(run)
    assert {r["split"] for r in records} == {"train", "test"}  # train and test rows, each with its own keys
    assert all("diversity" not in r for r in records if r["split"] == "train")
    assert __import__("json").loads((run / "config.json").read_text())["train"]["log"] == ["csv"]
    assert _train(run, "--resume", "--epochs", "3") == 0  # the saved config keeps --log csv
    _csv_matches_the_log(run)
    assert max(r["epoch"] for r in _records(run)) == 3
    assert (run / "metrics.csv").read_text().count("step,epoch,split") == 1


def test_log_takes_a_comma_list_or_repeats_and_is_checked(tmp_path, capsys):
    for argv in (["--log", "csv,tensorboard"], ["--log", "csv", "--log", "tensorboard"]):
        args = build_parser().parse_args(["features", "train", *argv])
        assert getattr(args, "train.log") == ["csv", "tensorboard"]
    assert _train(tmp_path / "run", "--log", "cvs") == 2
    assert "train.log.0 = 'cvs' (Input should be 'csv' or 'tensorboard')" in capsys.readouterr().err


def test_overwrite_removes_the_csv_but_not_a_users_files(tmp_path, capsys):
    """A run that never logged to TensorBoard owns no event files: ones put in its tensorboard/ stay."""
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1", "--log", "csv") == 0
    events = run / "tensorboard"
    events.mkdir()
    (events / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"old")
    (events / "notes.txt").write_text("mine")
    assert _train(run, "--epochs", "1") == 2  # a run is there: refused without --overwrite
    assert _train(run, "--epochs", "1", "--overwrite") == 0
    assert not (run / "metrics.csv").exists()
    assert sorted(p.name for p in events.iterdir()) == ["events.out.tfevents.1700000000.host.1.0", "notes.txt"]


def test_log_tensorboard_without_tensorboard_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)  # import fails
    assert _train(tmp_path / "run", "--log", "tensorboard") == 2
    err = _error_line(capsys)
    assert "--log tensorboard needs the tensorboard package" in err and "pip install 'genmodels[tensorboard]'" in err
    assert not (tmp_path / "run").exists()


def test_log_tensorboard_writes_each_records_numbers_as_scalars(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert _train(run, "--epochs", "2", "--log", "tensorboard") == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    records = _records(run)
    for split, key in (("train", "loss"), ("test", "loss"), ("test", "diversity")):
        want = [(r["step"], r[key]) for r in records if r["split"] == split]
        got = [(e.step, e.value) for e in events.Scalars(f"{split}/{key}")]
        assert [s for s, _ in got] == [s for s, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6)  # stored as float32


def test_packaging_keeps_a_users_torch_and_says_its_licence():
    """pyproject allows a range of torch (installing genmodels never swaps a user's build), the Makefile
    still installs the pinned CPU wheel first, and the licence pyproject names is in the repository."""

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_req and ">=" in torch_req and "<" in torch_req, torch_req
    assert "pip install -q torch==2.13.0" in (ROOT / "Makefile").read_text()
    assert project["license"]["text"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()


def test_the_readme_starts_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "## Set-up" in readme and "## A five-minute tour" in readme
    assert (ROOT / "docs" / "benchmarks.md").is_file() and "docs/benchmarks.md" in readme
