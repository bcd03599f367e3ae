"""The run's logs on their own (genmodels.runlog): metrics.jsonl and metrics.csv written record by record,
read back, and cut back to the checkpoint's step when a run resumes."""

import csv

from genmodels.rundir import RunDir
from genmodels.runlog import open_history, read_history

RECORDS = [{"step": 5, "epoch": 1, "split": "train", "loss": 1.5},
           {"step": 10, "epoch": 1, "split": "test", "loss": 1.25, "kl": [0.5, 0.25]},  # a new column, a list
           {"step": 15, "epoch": 2, "split": "train", "loss": 1.0, "note": "a, \"quoted\" cell"}]


def _table(run: RunDir) -> list[list[str]]:
    with open(run.metrics_csv, newline="") as f:
        return list(csv.reader(f))


def _write_all(run: RunDir) -> None:
    """A new log (and its table) holding RECORDS, closed."""
    log = open_history(run, [], ["csv"])
    for record in RECORDS:
        log.write(record)
    log.close()


def test_the_log_and_its_table_hold_every_record(tmp_path):
    run = RunDir(tmp_path)
    _write_all(run)
    assert read_history(run) == RECORDS
    assert _table(run) == [["step", "epoch", "split", "loss", "kl", "note"],  # every key once, in the order first seen
                           ["5", "1", "train", "1.5", "", ""],
                           ["10", "1", "test", "1.25", "[0.5, 0.25]", ""],
                           ["15", "2", "train", "1.0", "", 'a, "quoted" cell']]


def test_a_resume_keeps_the_records_up_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    _write_all(run)
    kept = read_history(run, upto_step=10)  # the checkpoint's step: the last record came after it
    assert kept == RECORDS[:2]
    log = open_history(run, kept, ["csv"], resumed_at=10)
    log.write(RECORDS[2])
    log.close()
    assert read_history(run) == RECORDS
    assert [row[0] for row in _table(run)] == ["step", "5", "10", "15"]
