"""torchrun with 2 CPU processes (gloo), through the documented command `torchrun --nproc_per_node=2 -m
genmodels train ...`: the same weights as one process on the same global batch, every buffer the same on
both ranks (the DCGAN's BatchNorm), the saved weights rank 0's, and a run stopped by SIGTERM and resumed
equal to one that was not stopped.

Each torchrun worker loads `sitecustomize.py` from a folder this file puts first on PYTHONPATH (HOOK): it
changes nothing in training, but writes what each rank ends with (its weights and buffers, the images it
trained on) beside the run, so the ranks can be compared; the SIGTERM test also asks it to signal torchrun
at a chosen step.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genmodels.checkpoint import read_safetensors
from genmodels.cli import main

HOOK = r'''
import os
if "RANK" in os.environ:  # a torchrun worker (torchrun's own process has no RANK)
    import json, signal, time
    from safetensors.torch import save_file
    import genmodels.engine as engine
    from genmodels.models import Model

    seen = {"images": 0, "steps": 0}
    train_step = Model.train_step

    def counting_step(self, batch, ctx):
        seen["images"] += batch.x.shape[0]
        seen["steps"] += 1
        if seen["steps"] == int(os.environ.get("TEST_SIGTERM_AT_STEP", 0)) and os.environ["RANK"] == "0":
            # SIGTERM to torchrun, which passes it on to every worker; this step waits until this worker has
            # it, so the stop comes at the end of exactly this step on both ranks.
            stop = signal.getsignal(signal.SIGTERM)
            got = []
            signal.signal(signal.SIGTERM, lambda *a: (got.append(1), stop(*a)))
            os.kill(os.getppid(), signal.SIGTERM)
            deadline = time.monotonic() + 60
            while not got and time.monotonic() < deadline:
                time.sleep(0.01)
            signal.signal(signal.SIGTERM, stop)
        return train_step(self, batch, ctx)

    Model.train_step = counting_step

    def dump(config, run, *args, **kwargs):
        result = run_training(config, run, *args, **kwargs)
        state = {k: v.detach().contiguous().clone() for k, v in result.model.state_dict().items()}
        rank = os.environ["RANK"]
        save_file(state, f"{run.path}.rank{rank}.safetensors")
        with open(f"{run.path}.rank{rank}.json", "w") as f:
            json.dump(seen, f)
        return result

    run_training, engine._train = engine._train, dump
'''


def _torchrun(tmp_path: Path, *args: str, stop_at: int | None = None,
              command: tuple[str, ...] = ("train",)) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m genmodels train ARGS` (torchrun as the venv's
    `python -m torch.distributed.run`; command: another subcommand that trains), with HOOK loaded by each worker."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), *sys.path]), "OMP_NUM_THREADS": "1"}
    if stop_at is not None:
        env["TEST_SIGTERM_AT_STEP"] = str(stop_at)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "genmodels", *command, *args, "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _ranks(run: Path) -> list[dict[str, torch.Tensor]]:
    return [load_file(f"{run}.rank{r}.safetensors") for r in (0, 1)]


def _seen(run: Path) -> list[dict]:
    return [json.loads(Path(f"{run}.rank{r}.json").read_text()) for r in (0, 1)]


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _saved(run: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(run / "model.safetensors")[0]


# An autoencoder without corruption draws no noise, so two processes can equal one. The odd global batch
# of 45 splits 23/22 between the ranks (the last one, 43, splits 22/21): averaging the two ranks' batch means
# without weighting them by their shares would not be the global batch's mean.
AE = ["ae", "--data", "digits", "--latent-dim", "4", "--hidden", "32", "--epochs", "3", "--batch-size", "45",
      "--lr", "3e-3", "--log-every", "8"]


@pytest.fixture(scope="module")
def ae_runs(tmp_path_factory):
    """The AE trained by torchrun on 2 processes, and by one process: (two, one)."""
    tmp = tmp_path_factory.mktemp("ddp_ae")
    _ok(_torchrun(tmp, *AE, "--out", str(tmp / "two")))
    assert main(["train", *AE, "--out", str(tmp / "one")]) == 0
    return tmp / "two", tmp / "one"


@pytest.mark.slow  # torchrun
def test_two_processes_equal_one_on_the_same_global_batch(ae_runs):
    two, one = ae_runs
    ranks = _ranks(two)
    _assert_equal(ranks[0], ranks[1])  # both ranks end with the same weights
    _assert_equal(ranks[0], _saved(two))  # and rank 0 saved them, as plain weights
    seen = _seen(two)
    assert [s["images"] for s in seen] == [3 * 735, 3 * 703]  # each rank trained on its share of every batch
    assert seen[0]["steps"] == 3 * 32  # ceil(1438 / 45) batches an epoch
    single = _saved(one)
    for k, v in single.items():
        assert (ranks[0][k] - v).abs().max() <= 1e-5, k
    # Adam is invariant to the gradients' scale, so equal weights would not show summed gradients; its first
    # moments (the gradients' running mean) would be twice as large.
    state_two, state_one = read_safetensors(two / "checkpoint.safetensors")[0], read_safetensors(
        one / "checkpoint.safetensors")[0]
    moments = [k for k in state_one if k.endswith(".exp_avg")]
    assert moments
    for k in moments:
        torch.testing.assert_close(state_two[k], state_one[k], rtol=1e-3, atol=1e-7)
    records = (two / "metrics.jsonl").read_text()
    assert records.count('"split": "test"') == 3  # one writer: rank 0 alone logs


@pytest.mark.slow  # torchrun
def test_sigterm_to_torchrun_saves_and_resuming_equals_an_uninterrupted_run(tmp_path):
    """A denoising AE: each rank draws its own masking noise, so the checkpoint must hold every rank's RNG state."""
    noisy = [*AE, "--corrupt", "mask:0.25"]
    two, cut = tmp_path / "two", tmp_path / "cut"
    _ok(_torchrun(tmp_path, *noisy, "--out", str(two)))
    stopped = _torchrun(tmp_path, *noisy, "--out", str(cut), stop_at=40)  # in the second epoch
    assert stopped.returncode != 0
    assert "SIGTERM stopped training at step 40 (epoch 2)" in stopped.stderr, stopped.stderr[-3000:]
    state = json.loads(read_safetensors(cut / "checkpoint.safetensors")[1]["state"])
    assert (state["epoch"], state["step"], state["batch"]) == (1, 40, 8)
    assert read_safetensors(cut / "checkpoint.safetensors")[0]["rng.torch.rank1"].dtype == torch.uint8
    _ok(_torchrun(tmp_path, *noisy, "--out", str(cut), "--resume"))
    _assert_equal(_saved(cut), _saved(two))
    tests = lambda run: [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())  # noqa: E731
                         if r["split"] == "test"]
    assert tests(cut) == tests(two)


@pytest.mark.slow  # torchrun
def test_dcgan_ends_with_rank_0s_buffers_on_every_rank(tmp_path):
    """Two optimisers, G updated every second step; BatchNorm's running statistics are buffers: each rank updates
    them from its own shard, and DDP gives every rank rank 0's before each forward and the engine before each
    epoch's end, so both ranks end equal."""
    run = tmp_path / "gan"
    proc = _torchrun(tmp_path, "gan", "--data", "digits", "--arch", "conv", "--channels", "8,16", "--latent-dim", "8",
                     "--d-steps", "2", "--epochs", "2", "--batch-size", "64", "--out", str(run))
    _ok(proc)
    assert proc.stdout.count("run directory:") == 1  # printed by rank 0 alone
    ranks = _ranks(run)
    stats = [k for k in ranks[0] if k.endswith("running_mean")]
    assert any(k.startswith("discriminator") for k in stats) and any(k.startswith("generator.") for k in stats)
    assert all(ranks[0][k].abs().sum() > 0 for k in stats)  # trained: not the initial zeros
    _assert_equal(ranks[0], ranks[1])
    _assert_equal(ranks[0], _saved(run))


@pytest.mark.slow  # torchrun
@pytest.mark.parametrize("family, flags", [
    ("ae", ["--latent-dim", "4", "--hidden", "16", "--code-activation", "sigmoid", "--contractive", "0.1"]),
    ("sdae", ["--layers", "32,8", "--pretrain-epochs", "1"]),  # a phase per layer, then fine-tuning: 3 optimizers
    ("pca", ["--latent-dim", "5"]),  # each rank sums its shard; the sums are reduced before the solve
    ("classifier", ["--channels", "8,16"]),  # the feature network, trained by `genmodels features train`
])
def test_every_family_trains_under_torchrun(tmp_path, digits, family, flags):
    run = tmp_path / family
    command = ("features", "train") if family == "classifier" else ("train", family)
    _ok(_torchrun(tmp_path, "--data", "digits", *flags, "--epochs", "1", "--batch-size", "64", "--out", str(run),
                  command=command))
    ranks = _ranks(run)
    _assert_equal(ranks[0], ranks[1])
    _assert_equal(ranks[0], _saved(run))
    tests = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "test"]
    assert tests and all(torch.isfinite(torch.tensor(r["loss"])) for r in tests)
    if family == "classifier":  # its record, written once, by rank 0
        assert json.loads((run / "features.json").read_text())["test_accuracy"] > 0.2
    if family == "pca":  # exact, not approximate: the same components as one process
        from genmodels.models.pca import fit_pca

        x = digits.test.batch(slice(0, len(digits.test)))
        expected = (fit_pca(digits.train, 5).reconstruct(x) - x).pow(2).flatten(1).sum(1).mean().item()
        assert tests[0]["rec"] == pytest.approx(expected, rel=1e-5)


def test_a_loss_not_computed_through_its_optimizers_wrapper_is_refused():
    """Under torchrun a family computes each optimizer's loss through ctx.forward or ctx.run; one that does not
    would leave its gradients un-averaged, each rank's own: ctx.step says so instead of training apart."""
    from torch import nn

    from genmodels.optim import StepContext

    class Wrapper(nn.Module):  # what distributed.replicate's DDP does with the function it is given
        def forward(self, fn, *args):
            return fn(*args)

    model = nn.Linear(2, 1)
    ctx = StepContext(model, {"main": torch.optim.Adam(model.parameters())}, replicas={"main": Wrapper()})
    with pytest.raises(RuntimeError, match="not computed through ctx.forward or ctx.run"):
        ctx.step(model(torch.ones(3, 2)).sum())
    before = model.weight.detach().clone()
    ctx.step(ctx.forward(torch.ones(3, 2)).sum())  # through the wrapper: a step
    assert not torch.equal(before, model.weight)


@pytest.mark.parametrize("batch_size, holds", [
    (1, "--batch-size is 1"), (1437, "the last batch of each epoch holds 1 of the 1438 training images")])
def test_a_batch_smaller_than_the_number_of_processes_is_refused(batch_size, holds):
    """A rank with no image of a batch would average in an empty batch's loss (NaN): refused before training."""
    from genmodels import ConfigError, build_run_config
    from genmodels.distributed import Dist
    from genmodels.engine import _check_shards

    config = build_run_config({"family": "ae", "train": {"batch_size": batch_size}})
    with pytest.raises(ConfigError, match=rf"With 2 processes every batch needs at least 2 images, but {holds}; "
                                          r"choose a --batch-size \(train.batch_size\) of at least 2"):
        _check_shards(config, 1438, Dist(rank=0, world=2))
    _check_shards(config, 1438, Dist())  # one process: any batch
    _check_shards(build_run_config({"family": "ae", "train": {"batch_size": 45}}), 1438, Dist(rank=1, world=2))
