"""The engine's parts: the schedule's length answered from the config, resume_run as the one resume path, the
collapse watch, where a run stands (Position), what it prints (Records) and the random-number states it keeps."""

import json
import warnings

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import build_run_config
from genmodels.collapse import CollapseWatch
from genmodels.engine import resume_run, train
from genmodels.errors import CheckpointError, GenmodelsError
from genmodels.models import FAMILIES, VAE, build_model
from genmodels.position import Position
from genmodels.progress import Records
from genmodels.rngstate import rng_state, set_rng_state

pytestmark = pytest.mark.filterwarnings("ignore:After epoch:RuntimeWarning")  # a tiny VAE's samples look alike


# -- total_epochs: a question to the config, not to a built model ---------------------------------------------
@pytest.mark.parametrize("name", list(FAMILIES))
def test_total_epochs_from_the_config_equals_the_built_models(name):
    model = {"classes": 10} if name == "classifier" else {}  # the one family without a default for everything
    config = build_run_config({"family": name, "model": model, "train": {"epochs": 7}})
    model = build_model(name, config.model, (1, 8, 8))
    assert config.total_epochs() == model.total_epochs(7)
    assert config.total_epochs(3) == model.total_epochs(3)


@pytest.mark.parametrize("layers, pretrain, epochs, total", [([16, 4], 2, 3, 7), ([8], 0, 5, 5), ([16, 8, 4], 1, 1, 4)])
def test_the_stacked_autoencoders_pretraining_epochs_count_before_the_asked_for_ones(layers, pretrain, epochs, total):
    config = build_run_config({"family": "sdae", "model": {"layers": layers, "pretrain_epochs": pretrain},
                               "train": {"epochs": epochs}})
    assert config.total_epochs() == total
    assert build_model("sdae", config.model, (1, 8, 8)).total_epochs(epochs) == total


def _count_builds(monkeypatch) -> list[int]:
    built = []
    init = VAE.__init__

    def counting(self, *args, **kwargs):
        if torch.get_default_device().type != "meta":  # a count on the meta device (models.footprint) builds nothing
            built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(VAE, "__init__", counting)
    return built


def test_a_finished_run_is_recognised_without_building_a_model(digits, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 2}), out, progress=False, data=digits)
    built = _count_builds(monkeypatch)
    with pytest.raises(GenmodelsError, match="has trained 2 epochs, so --epochs 1 would not extend it"):
        resume_run(out, 1, progress=False, data=digits)
    assert built == []  # refused on the config alone
    with pytest.warns(RuntimeWarning, match="nothing to resume"):
        result = resume_run(out, progress=False, data=digits)
    assert len(built) == 1 and isinstance(result.model, VAE)  # the one model it returns


# -- resume_run, the one resume path --------------------------------------------------------------------------
def test_resume_settings_are_the_configs_settings_but_what_a_run_records_itself():
    config = tiny_vae_config(train={"epochs": 3, "log_every": 7}).model_copy(update={"shape": (1, 8, 8)})
    settings = config.resume_settings()
    assert set(settings) == {"family", "model", "data", "train"}
    assert "epochs" not in settings["train"] and settings["train"]["log_every"] == 7
    whole = json.loads(config.to_json())
    assert settings == {"family": "vae", "model": whole["model"], "data": whole["data"],
                        "train": {k: v for k, v in whole["train"].items() if k != "epochs"}}
    assert config.train.epochs == 3 and config.shape == (1, 8, 8)  # the config itself is untouched


def test_train_with_resume_and_resume_run_continue_a_run_alike(digits, tmp_path, monkeypatch):
    full = train(tiny_vae_config(train={"epochs": 3}), tmp_path / "full", progress=False, data=digits)
    for name in ("a", "b"):
        train(tiny_vae_config(train={"epochs": 1}), tmp_path / name, progress=False, data=digits)
    calls = []
    real = resume_run

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr("genmodels.engine.resume_run", spy)
    a = train(tiny_vae_config(train={"epochs": 3}), tmp_path / "a", resume=True, progress=False, data=digits)
    assert len(calls) == 1 and calls[0][0][1] == 3  # train(resume=True) went through resume_run, 3 epochs in all
    b = resume_run(tmp_path / "b", 3, progress=False, data=digits)
    for (k, x), y, z in zip(full.model.state_dict().items(), a.model.state_dict().values(),
                            b.model.state_dict().values()):
        assert torch.equal(x, y) and torch.equal(x, z), k
    tests = lambda h: [r for r in h if r["split"] == "test"]  # noqa: E731
    assert tests(a.history) == tests(b.history) == tests(full.history)


# -- the collapse watch ---------------------------------------------------------------------------------------
def _warned(watch: CollapseWatch, values: list[float], last_at: int | None = None) -> list[tuple[int, str]]:
    seen = []
    for epoch, value in enumerate(values):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            watch.check(epoch, value, last=epoch == last_at)
        seen += [(epoch + 1, str(w.message)) for w in record]
    return seen


def test_the_collapse_watch_warns_once_per_stretch_below_and_not_while_warming_up():
    seen = _warned(CollapseWatch("gan", "try X"), [0.05, 0.1, 0.8, 0.1, 0.05, 0.02, 0.9, 0.2, 0.1])
    assert [e for e, _ in seen] == [4, 8]
    assert all("fell to" in m and "the gan's samples" in m and "try X" in m for _, m in seen)
    ended = _warned(CollapseWatch("vae", "advice"), [0.05, 0.1, 0.1], last_at=2)
    assert [(e, "ended at 0.10" in m) for e, m in ended] == [(3, True)]
    assert _warned(CollapseWatch("vae", "advice"), [None, None], last_at=1) == []  # a model that draws no samples


def test_a_resumed_watch_remembers_that_the_samples_were_varied():
    history = [{"split": "train", "loss": 1.0}, {"split": "test", "diversity": 0.9}]
    assert [e for e, _ in _warned(CollapseWatch.resumed("gan", "x", history), [0.1])] == [1]
    assert _warned(CollapseWatch.resumed("gan", "x", history[:1]), [0.1]) == []


# -- where a run stands, and what it prints -------------------------------------------------------------------
def test_the_position_gives_the_checkpoints_state_at_an_epochs_end_and_inside_it():
    at = Position.restored({"epoch": 2, "step": 40, "seconds": 3.5})
    assert (at.epoch, at.step, at.batch) == (2, 40, 0)
    at.seconds += [1.25, 2.0]
    assert at.at_epoch_end() == {"epoch": 3, "step": 40, "seconds": 6.75}
    inside = at.inside_epoch(5)
    assert inside["epoch"] == 2 and inside["batch"] == 5 and inside["seconds"] > 6.75
    older = Position.restored({"epoch": 1, "step": 9, "batch": 3})  # from before seconds were kept
    assert older.batch == 3 and older.at_epoch_end() == {"epoch": 2, "step": 9}


class _Bar:
    def __init__(self, disable: bool):
        self.disable, self.written = disable, []

    def write(self, line: str) -> None:
        self.written.append(line)


@pytest.mark.parametrize("lines, bar, printed, written", [
    (True, True, list(range(1, 21)), []),  # no bar: every epoch's line, printed
    (False, False, [], [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]),  # under the bar: every tenth of the run
    (False, True, [], []),  # progress=False: nothing
])
def test_the_epoch_lines(capsys, lines, bar, printed, written):
    records = Records([], None, _Bar(disable=bar), lines)
    for epoch in range(20):
        records.epoch_line(epoch, 20, {"test loss": 1.0, "diversity": 0.5}, 2.0)
    out = capsys.readouterr().out.splitlines()
    assert [int(line.split()[1].split("/")[0]) for line in out] == printed
    assert [int(line.split()[1].split("/")[0]) for line in records.bar.written] == written
    assert all(line == f"epoch {e}/20  test loss 1.000  diversity 0.500  2.0 s"
               for line, e in zip(out + records.bar.written, printed + written))


def test_the_random_number_states_restore_the_same_draws_and_refuse_a_damaged_one(tmp_path):
    order = torch.Generator().manual_seed(3)
    saved = rng_state(order)
    first = (torch.rand(4), torch.randperm(10, generator=order))
    set_rng_state(saved, order, torch.device("cpu"), tmp_path / "ckpt")
    again = (torch.rand(4), torch.randperm(10, generator=order))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    with pytest.raises(CheckpointError, match="holds no valid data random-number state"):
        set_rng_state({**saved, "data": saved["data"][:-1]}, order, torch.device("cpu"), tmp_path / "ckpt")
