"""`genmodels export`: a trained part of a run as a portable ONNX file (docs/guide.md, "Export").

The exported graph computes exactly what the Python API does, with a dynamic batch size:
- decoder, generator: codes (B, latent_dim) -> `model.decode(z)`, images (B, C, H, W) in [0, 1] (a GAN's moving
  average of G where it has one, as sampling uses);
- encoder: images (B, C, H, W) in [0, 1] -> `model.encode(x)`, codes (B, latent_dim) (a VAE's posterior mean).

torch.onnx's exporter (torch.export-based) needs the onnx and onnxscript packages: `pip install 'genmodels[onnx]'`
(onnxruntime, in the same extra, runs the file).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import GenmodelsError
from .fileio import atomic_write
from .models import GenerativeModel, families_that
from .runs import Run, generative, load_run

FORMATS = ("onnx",)
OPSET = 18  # torch.onnx's default opset for its torch.export-based exporter


@dataclass(frozen=True)
class Part:
    """A part of a model that can leave genmodels: the capability that gives it and the method it runs."""

    capability: str  # "encodes" | "samples", as the model class declares it
    method: str  # "encode" | "decode"
    input_name: str
    output_name: str


PARTS = {
    "decoder": Part("encodes", "decode", "z", "x"),
    "generator": Part("samples", "decode", "z", "x"),
    "encoder": Part("encodes", "encode", "x", "z"),
}


class _Method(nn.Module):
    """One method of a model as a module's forward, for the exporter."""

    def __init__(self, model: GenerativeModel, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(inputs)


def part_module(run: Run, part: str) -> tuple[nn.Module, torch.Tensor]:
    """The run's `part` as a module in eval mode, and an example input of a batch of two; a one-sentence
    GenmodelsError for a part its family lacks."""
    if part not in PARTS:
        raise GenmodelsError(f"Unknown part {part!r}; export one of {', '.join(PARTS)}.")
    spec = PARTS[part]
    model = generative(run)
    if not getattr(model, spec.capability):
        others = [name for name, p in PARTS.items() if getattr(model, p.capability)]
        instead = f"export --part {' or --part '.join(others)}, or" if others else "use"
        raise GenmodelsError(f"The {run.config.family} run in {run.dir} has no {part}; {instead} a run of a family "
                             f"that has one ({families_that(spec.capability)}).")
    model.eval()
    c, h, w = model.shape
    example = torch.zeros(2, model.latent_dim) if spec.method == "decode" else torch.full((2, c, h, w), 0.5)
    return _Method(model, spec.method), example.to(run.device)


def _exporter_available() -> None:
    try:
        import onnx  # noqa: F401  # the exporter writes its graph with onnx and onnxscript
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise GenmodelsError(f"ONNX export needs the {err.name} package; pip install 'genmodels[onnx]'.") from None


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's progress lines, graph dumps and notes on its own internals (warnings, torch's logs: "torchvision
    is not installed"), none of which the user can act on, kept out of genmodels' output."""
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)  # torch's loggers (the exporter's, the tracer's) have handlers of their own
    try:
        with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),
              contextlib.redirect_stderr(io.StringIO())):  # the tracer prints the graphs it could not export
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def to_onnx(module: nn.Module, example: torch.Tensor, part: str) -> bytes:
    """The ONNX model of `module` on inputs like `example`, its batch size left dynamic."""
    _exporter_available()
    spec = PARTS[part]
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        try:
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                        input_names=[spec.input_name], output_names=[spec.output_name],
                                        dynamic_shapes=({0: batch},), external_data=False)
        except Exception as err:  # the exporter cannot trace the network (data-dependent control flow, say)
            cause: BaseException = err
            while cause.__cause__ is not None:  # the exporter wraps the tracer's error, which names what failed
                cause = cause.__cause__
            said = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).split())[:200]  # without terminal colours
            raise GenmodelsError(f"The {part} cannot be exported to ONNX ({type(cause).__name__}: {said}); a network "
                                 "with Python control flow that depends on its inputs' values needs rewriting (with "
                                 "torch.cond, say).") from None
    assert program is not None  # dynamo=True always returns the program
    return program.model_proto.SerializeToString()


def export(run_dir: str | Path, part: str, out: str | Path, fmt: str = "onnx", device: str = "cpu") -> Path:
    """Write the run's `part` (decoder, generator or encoder) to `out` in `fmt`, atomically; returns `out`."""
    if fmt not in FORMATS:
        raise GenmodelsError(f"Unknown export format {fmt!r}; use {', '.join(FORMATS)}.")
    run = load_run(run_dir, device)
    module, example = part_module(run, part)
    data = to_onnx(module, example, part)
    atomic_write(Path(out), data)
    return Path(out)
