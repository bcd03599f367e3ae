"""--precision auto (train.precision = "auto"): bf16-mixed where the device multiplies bfloat16 natively (the CPU
flags avx512_bf16 or amx_bf16, a GPU with bfloat16), fp32 elsewhere; decided once, its reason printed once, and
config.json records the precision decided, which a resume keeps unless it is given auto again."""

import json

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import train
from genmodels.cli import main
from genmodels.engine import resume_run
from genmodels.errors import GenmodelsError
from genmodels.precision import check_precision, cpu_flags, resolve_precision

CPU = torch.device("cpu")
AVX512 = "fpu sse2 avx2 avx512f avx512bw avx512vl"  # an AVX-512 CPU without bf16 products (Skylake-SP, say)


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    return path


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    assert cpu_flags(_cpuinfo(tmp_path, AVX512 + " avx512_bf16 amx_bf16")) >= {"avx512_bf16", "amx_bf16", "avx2"}
    assert "avx512_bf16" not in cpu_flags(_cpuinfo(tmp_path, AVX512))
    assert cpu_flags(tmp_path / "missing") == set()  # macOS, Windows: no /proc/cpuinfo, so auto means fp32


@pytest.mark.parametrize("flags, expected, named", [
    (AVX512 + " avx512_bf16", "bf16-mixed", "(avx512_bf16)"),
    (AVX512 + " amx_bf16 amx_tile avx512_bf16", "bf16-mixed", "(avx512_bf16, amx_bf16)"),
    (AVX512, "fp32", "no native bfloat16"),
    ("", "fp32", "no native bfloat16"),
])
def test_auto_follows_the_cpu_flags(monkeypatch, flags, expected, named):
    monkeypatch.setattr("genmodels.precision.cpu_flags", lambda: set(flags.split()))
    precision, reason = resolve_precision("auto", CPU)
    assert precision == expected and reason is not None and named in reason
    assert reason.startswith(f"--precision auto: {expected}, ") and reason.count(".") == 1
    assert check_precision("auto", CPU) == expected  # genmodels evaluate --precision auto takes the same path
    assert resolve_precision("fp32", CPU) == ("fp32", None)  # a precision given by name is kept, silently
    assert resolve_precision("bf16-mixed", CPU) == ("bf16-mixed", None)


def test_auto_on_a_gpu_follows_its_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda")) == (
        "fp32", "--precision auto: fp32, as this GPU (Tesla V100) has no bfloat16.")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA A100")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda"))[0] == "bf16-mixed"
    assert resolve_precision("auto", torch.device("mps"))[0] == "fp32"


def _recorded(run) -> str:
    return json.loads((run / "config.json").read_text())["train"]["precision"]


@pytest.mark.filterwarnings("ignore:After epoch")  # a collapse warning of the tiny VAE, not the subject here
def test_config_json_records_the_precision_auto_chose_and_a_resume_keeps_it(digits, tmp_path, monkeypatch, capsys):
    """Trained with auto where bf16 is native, resumed where it is not: the resume keeps the bf16-mixed that
    config.json records (the run continues as it was trained); asked for auto again, it decides afresh."""
    monkeypatch.setattr("genmodels.precision.cpu_flags", lambda: {"avx512f", "amx_bf16"})
    run = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 1, "precision": "auto"}), run, progress="lines", data=digits)
    out = capsys.readouterr().out
    assert out.count("--precision auto") == 1 and "--precision auto: bf16-mixed, " in out
    assert _recorded(run) == "bf16-mixed"
    monkeypatch.setattr("genmodels.precision.cpu_flags", lambda: {"avx512f"})  # "another machine"
    resume_run(run, epochs=2, progress="lines", data=digits)
    assert _recorded(run) == "bf16-mixed" and "--precision auto" not in capsys.readouterr().out
    result = resume_run(run, epochs=3, progress=False, data=digits, settings={"train": {"precision": "auto"}})
    assert _recorded(run) == "fp32"
    assert [r["epoch"] for r in result.history if r["split"] == "test"] == [1, 2, 3]


def test_a_bad_precision_is_still_one_sentence(tmp_path, capsys):
    rc = main(["train", "vae", "--data", "digits", "--precision", "automatic", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "train.precision = 'automatic'" in err and "'auto'" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(GenmodelsError, match="Unknown precision 'half'; use fp32, bf16-mixed, fp16-mixed or auto"):
        check_precision("half")
