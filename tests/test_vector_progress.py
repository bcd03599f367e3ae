"""The progress picture of a vector run: the samples of one fixed noise batch at a few epochs, side by side
(images/progress.png, from the record progress.npz), which survives --resume and a crash, and the report shows."""

import re

import numpy as np
import pytest
import torch

from conftest import cli
from genmodels import build_run_config, load_run, train
from genmodels.errors import GenmodelsError
from genmodels.rundir import RunDir
from genmodels.vectordata import PROGRESS_PANELS, progress_epochs, record_progress

EPOCHS = 3


def config(epochs: int = EPOCHS):
    return build_run_config({"family": "gan", "model": {"hidden": [32, 32], "latent_dim": 4},
                             "data": {"source": "ring8", "toy_size": 300},
                             "train": {"epochs": epochs, "batch_size": 100, "lr": 3e-3, "log_every": 4}})


class Crash(Exception):
    """A process killed between an epoch's pictures and its checkpoint."""


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A GAN on ring8 trained EPOCHS epochs without a stop."""
    out = tmp_path_factory.mktemp("progress") / "whole"
    with pytest.warns(RuntimeWarning):  # three epochs of a GAN look collapsed: not what is tested here
        train(config(), out, progress=False)
    return RunDir(out)


def test_the_marks_spread_over_training_and_keep_every_epoch_of_a_short_run():
    assert progress_epochs(3) == {0, 1, 2}
    for epochs in (7, 40, 1000):
        marks = sorted(progress_epochs(epochs))
        assert marks[0] == 0 and marks[-1] == epochs - 1 and 4 <= len(marks) <= PROGRESS_PANELS
    assert sorted(progress_epochs(40)) == [0, 1, 3, 8, 18, 39]  # more of the first epochs, where modes appear


@pytest.mark.filterwarnings("ignore:After epoch")
def test_each_epoch_records_the_same_noises_samples_and_draws_them(whole):
    snapshots = whole.read_progress()
    assert sorted(snapshots) == list(range(EPOCHS))
    assert all(p.shape == (1000, 2) and p.dtype == np.float32 for p in snapshots.values())
    assert whole.progress_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The last is what the finished model draws from the training's fixed noise (seed + 1), in data units.
    run = load_run(whole.path)
    with torch.inference_mode():
        drawn = run.model.sample(1000, generator=torch.Generator().manual_seed(run.config.train.seed + 1))
    assert np.allclose(snapshots[EPOCHS - 1], run.in_units(drawn).numpy(), atol=1e-5)
    assert not np.allclose(snapshots[0], snapshots[EPOCHS - 1])  # the generator moved: the panels differ


@pytest.mark.filterwarnings("ignore:After epoch")
def test_a_crash_after_the_pictures_then_resume_gives_the_uninterrupted_picture(whole, tmp_path, monkeypatch):
    out = tmp_path / "crashed"
    save, calls = RunDir.save, []

    def crash_at_second(self, *args, **kwargs):  # epoch 2's pictures are written, its checkpoint is not
        calls.append(1)
        if len(calls) == 2:
            raise Crash
        return save(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(RunDir, "save", crash_at_second)
        with pytest.raises(Crash):
            train(config(), out, progress=False)
    run = RunDir(out)
    assert run.trained_epochs() == 1 and sorted(run.read_progress()) == [0, 1]  # recorded ahead of the checkpoint
    train(config(), out, resume=True, progress=False)
    got, want = run.read_progress(), whole.read_progress()
    assert sorted(got) == sorted(want)
    for e in want:
        assert np.array_equal(got[e], want[e]), e
    assert run.progress_png.read_bytes() == whole.progress_png.read_bytes()


def test_a_damaged_record_is_one_sentence_and_the_next_mark_replaces_it(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_progress() == {}
    run.progress_file.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(GenmodelsError, match="is damaged") as err:
        run.read_progress()
    assert "\n" not in str(err.value)
    points = torch.randn(50, 2)
    record_progress(run, 0, 4, points, "ring8", None, "gan")
    assert list(run.read_progress()) == [0] and np.allclose(run.read_progress()[0], points.numpy())
    assert run.progress_png.is_file()
    record_progress(run, 2, 40, points, "ring8", None, "gan")  # epoch 3 of 40 is no mark: nothing changes
    assert list(run.read_progress()) == [0]


def test_overwrite_removes_the_record_and_its_picture(whole):
    assert {whole.progress_file, whole.progress_png} <= set(whole.ours())


@pytest.mark.filterwarnings("ignore:After epoch")
def test_the_report_of_a_vector_run_shows_its_progress(whole, tmp_path):
    report = tmp_path / "r.html"
    assert cli("compare", whole.path, "--out", report) == 0
    html = report.read_text()
    assert "Samples of one fixed noise batch at a few epochs of training" in html
    shown = r'<img src="data:image/png;base64,[^"]+" alt="progress of whole" class="progress[ a-z]*"'
    assert len(re.findall(shown, html)) == 1
