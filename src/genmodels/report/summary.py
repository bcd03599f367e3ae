"""What the report shows of one run (gathered by compare.py, drawn by html.py, read by findings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunSummary:
    """What the report shows of one run: its label, a one-line description, its eval.json (None if
    it has none), per section PNG bytes or a short note saying why there is no picture, and what the
    run directory says of it: family, code size, values per image, (epochs trained, epochs planned),
    seconds of training, where it is, and whether it ran on vectors."""

    name: str
    about: str = ""
    metrics: dict | None = None
    pictures: dict[str, bytes | str] = field(default_factory=dict)
    family: str = ""
    code: int | None = None
    epochs: tuple[int, int] | None = None
    train_seconds: float | None = None
    path: str | None = None  # the run directory as the user named it: the explore command shows it
    vectors: bool = False  # trained on vector data (N, D): its pictures are scatters in the data's units
    conditional: bool = False  # models p(x | y), given the class label (model.conditional)
    classes: list[str] | None = None  # a conditional run's class names, in label order

    @property
    def collapsed(self) -> bool:
        return (self.metrics or {}).get("collapsed") is True
