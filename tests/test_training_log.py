"""What training reports as it goes: one line an epoch (without a terminal or with --no-progress) or a
progress bar, and the logs beside metrics.jsonl (--log csv, --log tensorboard)."""

import csv
import re
from pathlib import Path

import pytest

from genmodels.cli import build_parser, main

TINY = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "200", "--log-every", "3"]


def _train(out, *extra) -> int:
    return main(["train", "vae", *TINY, "--out", str(out), *extra])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_evaluate_no_progress_draws_no_bar(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)  # as on a terminal
    capsys.readouterr()
    args = ["evaluate", str(run), "--parzen-samples", "0", "--quality-samples", "0", "--probe-train", "0",
            "--importance-samples", "5"]
    assert main([*args, "--no-progress"]) == 0
    assert "log p(x), K=5" not in capsys.readouterr().err


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
