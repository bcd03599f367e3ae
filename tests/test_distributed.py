"""torchrun with 2 CPU processes (gloo): identical weights on both ranks, the loss falls, the
saved weights load without torchrun, and the result matches one process with the same global batch."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from genmodels import build_run_config, load_run, train

WORKER = """
import hashlib, json, os, sys
import torch
torch.set_num_threads(1)
from genmodels import build_run_config, load_data, train
values, out = json.loads(sys.argv[1]), sys.argv[2]
result = train(build_run_config(values), out, progress=False, data=load_data("digits"))
state = result.model.state_dict()
digest = hashlib.sha256(b"".join(v.detach().contiguous().numpy().tobytes() for v in state.values())).hexdigest()
with open(f"{out}.rank{os.environ['RANK']}.json", "w") as f:
    json.dump({"digest": digest, "history": result.history}, f)
torch.distributed.destroy_process_group()  # as `genmodels` itself does after a command
"""


def _digest(model) -> str:
    return hashlib.sha256(b"".join(v.detach().contiguous().numpy().tobytes()
                                   for v in model.state_dict().values())).hexdigest()


def _torchrun(tmp_path, values: dict, name: str) -> list[dict]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), json.dumps(values), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((tmp_path / f"{name}.rank{r}.json").read_text()) for r in (0, 1)]


def _tests(history, key="loss"):
    return [r[key] for r in history if r["split"] == "test"]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, digits):
    values = {"family": "vae", "model": {"latent_dim": 2, "hidden": [32]},
              "train": {"epochs": 3, "batch_size": 64, "lr": 3e-3}}
    ranks = _torchrun(tmp_path, values, "vae")
    assert ranks[0]["digest"] == ranks[1]["digest"]  # both ranks end with the same weights
    losses = _tests(ranks[0]["history"])
    assert losses[-1] < losses[0]
    assert _tests(ranks[1]["history"]) == []  # rank 1 evaluates and logs nothing: rank 0 does
    saved = load_run(tmp_path / "vae").model  # plain weights: no torchrun needed to load them
    assert _digest(saved) == ranks[0]["digest"]
    single = train(build_run_config(values), tmp_path / "single", progress=False, data=digits)
    # Same global batch and order; only the noise differs (each rank draws its own): close, not equal.
    assert _tests(single.history)[-1] == pytest.approx(losses[-1], rel=0.03)
    assert (tmp_path / "vae" / "metrics.jsonl").read_text().count('"split": "test"') == 3  # one writer


@pytest.mark.parametrize("family, model", [
    ("gan", {"latent_dim": 4, "hidden": [32], "d_steps": 2}),
    ("ae", {"latent_dim": 4, "hidden": [16], "code_activation": "sigmoid", "contractive": 0.1}),
    ("pca", {"latent_dim": 5}),  # each rank sums its shard; the sums are reduced before the solve
])
def test_two_optimisers_the_contractive_penalty_and_pca_under_torchrun(tmp_path, digits, family, model):
    ranks = _torchrun(tmp_path, {"family": family, "model": model, "train": {"epochs": 2, "batch_size": 64}}, family)
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert torch.isfinite(torch.tensor(_tests(ranks[0]["history"]))).all()
    if family == "pca":  # exact, not approximate: the same components as one process
        from genmodels.models.pca import fit_pca

        x = digits.test.batch(slice(0, len(digits.test)))
        expected = (fit_pca(digits.train, 5).reconstruct(x) - x).pow(2).flatten(1).sum(1).mean().item()
        assert _tests(ranks[0]["history"], "rec")[0] == pytest.approx(expected, rel=1e-5)
