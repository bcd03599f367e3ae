"""The harness of tests/test_loss_terms*.py: what one training step of a model minimises, read from the gradients
its optimizers are handed, against the test's own closed form of that loss.

`minimised` runs the model's own `train_step` through a StepContext whose optimizers move nothing and keep the
gradients each step gave them, so what is compared is the loss that reaches the parameters, not a logged value.
`expected_gradients` differentiates a test's independent recomputation (its own formulas, the model's networks as
functions) with autograd. Random draws (corruption, the reparameterisation, a GAN's prior samples, dropout, the
gradient penalty's interpolation) come from the same seed in the same order in both, so the closed forms hold
exactly for the noise drawn."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genmodels.config import TrainConfig
from genmodels.data import Batch
from genmodels.models import build_model
from genmodels.models.base import Model
from genmodels.optim import StepContext

SEED = 1234
SHAPE = (1, 5, 5)  # 25 pixels: small enough for exact Jacobians, big enough for every family's nets
CPU = torch.device("cpu")


class Recorder(torch.optim.Optimizer):
    """An optimizer that leaves its parameters where they are and keeps the gradients of each step it is asked
    to make: the gradient of the loss the step minimised (after clipping, where the StepContext clips)."""

    def __init__(self, params: list[torch.nn.Parameter]):
        super().__init__(params, {})
        self.steps: list[list[torch.Tensor | None]] = []

    def step(self, closure=None):
        self.steps.append([None if p.grad is None else p.grad.clone() for p in self.params])

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]


@dataclass
class Stepped:
    """What one or more calls of train_step did: the parts they returned, and each optimizer's recorder."""

    parts: list[dict[str, torch.Tensor]]
    recorders: dict[str, Recorder]
    leftover: dict[str, torch.Tensor | None]  # every parameter's .grad after the calls, by name


def tiny(family: str, model: dict, shape: tuple[int, int, int] = SHAPE) -> Model:
    torch.manual_seed(0)
    from genmodels.models.registry import FAMILIES

    return build_model(family, FAMILIES[family].config.model_validate(model), shape).train()


def batch(n: int = 6, labelled: bool = False, shape: tuple[int, int, int] = SHAPE) -> Batch:
    g = torch.Generator().manual_seed(7)
    x = torch.rand(n, *shape, generator=g)
    return Batch(x, torch.arange(n) % 3 if labelled else None)


def minimised(model: Model, b: Batch, calls: int = 1, grad_clip: float | None = None,
              train: TrainConfig | None = None) -> Stepped:
    """Call model.train_step `calls` times on b from SEED, with recording optimizers over the same parameters
    as the model's own; the model's state (spectral norm's vectors, the GAN's step count) is put back after."""
    state = copy.deepcopy(model.state_dict())
    own = model.make_optimizers(train or TrainConfig(), CPU)
    recorders = {name: Recorder([p for g in opt.param_groups for p in g["params"]]) for name, opt in own.items()}
    ctx = StepContext(model, dict(recorders), grad_clip)  # type: ignore[arg-type]
    torch.manual_seed(SEED)
    parts = [model.train_step(b, ctx) for _ in range(calls)]
    leftover = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model.load_state_dict(state)
    return Stepped(parts, recorders, leftover)


def gradients(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    found = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(found, params)]


def clipped(grads: list[torch.Tensor], max_norm: float | None) -> list[torch.Tensor]:
    """torch.nn.utils.clip_grad_norm_'s rule, written out: scale by max_norm / (norm + 1e-6) where that is below 1."""
    if max_norm is None:
        return grads
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(norm) + 1e-6))
    return [g * scale for g in grads]


def assert_close(got: torch.Tensor | None, want: torch.Tensor, what: str, rtol: float = 1e-4,
                 atol: float = 1e-6) -> None:
    got = torch.zeros_like(want) if got is None else got
    assert torch.allclose(got, want, rtol=rtol, atol=atol), (
        f"{what}: max difference {(got - want).abs().max().item():.3g} (largest value {want.abs().max().item():.3g})")


def check_step(model: Model, stepped: Stepped, step: int, name: str, loss: torch.Tensor,
               extra: Callable[[torch.nn.Parameter], torch.Tensor] | None = None,
               grad_clip: float | None = None) -> None:
    """The gradients optimizer `name` got at its `step`-th step equal autograd's on `loss` (the closed form),
    plus extra(p) (an analytic term: weight decay's 2 beta W), clipped as the StepContext clips."""
    rec = stepped.recorders[name]
    assert len(rec.steps) > step, f"optimizer {name!r} made {len(rec.steps)} steps, not {step + 1}"
    want = gradients(loss, rec.params)
    if extra is not None:
        want = [g + extra(p) for g, p in zip(want, rec.params)]
    names = {id(p): n for n, p in model.named_parameters()}
    for got, w, p in zip(rec.steps[step], clipped(want, grad_clip), rec.params):
        assert_close(got, w, f"gradient of {names[id(p)]} in {name!r}'s step {step + 1}")


def check_parts(parts: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
    """Every term of the closed form is logged under its name with its value."""
    for key, value in terms.items():
        assert key in parts, f"{key} is not logged (logged: {sorted(parts)})"
        assert_close(parts[key], value.detach(), f"logged {key}")


def check_no_stray_gradients(model: Model, stepped: Stepped) -> None:
    """A parameter no optimizer stepped holds no gradient: nothing outside the phase's loss took part in it.
    One that was stepped holds the gradient of its optimizer's last step (a later loss added nothing to it)."""
    last = {}
    for rec in stepped.recorders.values():
        if rec.steps:
            last.update({id(p): g for p, g in zip(rec.params, rec.steps[-1])})
    for name, p in model.named_parameters():
        got = stepped.leftover[name]
        if id(p) in last and last[id(p)] is not None:
            assert got is not None and torch.equal(got, last[id(p)]), f"{name}'s gradient changed after its step"
        else:
            assert got is None or not got.any(), f"{name} got a gradient although no optimizer stepped it"
