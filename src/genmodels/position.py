"""Where a training run stands, as its checkpoint records it (docs/ARCHITECTURE.md, "One training step"): the
epoch, the step, the batch inside an interrupted epoch, and the seconds of training so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Position:
    """The epoch training is in (0-based: the epochs finished before it), the optimizer steps taken, the batch to
    start the epoch from (above 0 only when resuming an interrupted epoch), and the wall time of training."""

    epoch: int = 0
    step: int = 0
    batch: int = 0
    seconds_before: float | None = 0.0  # training time before this process resumed the run (None: not recorded)
    seconds: list[float] = field(default_factory=list)  # each epoch's training steps in this process
    epoch_start: float = 0.0  # time.perf_counter() when the present epoch's steps began

    @classmethod
    def restored(cls, state: dict[str, Any]) -> Position:
        """The position a checkpoint's training state (checkpoint.training_state) holds; older checkpoints kept
        no seconds, and a batch only inside an epoch."""
        return cls(state["epoch"], state["step"], state.get("batch", 0),
                   float(state["seconds"]) if "seconds" in state else None)

    def at_epoch_end(self) -> dict[str, Any]:
        """The checkpoint's state after the epoch this position is in."""
        return {"epoch": self.epoch + 1, "step": self.step, **self._seconds()}

    def inside_epoch(self, batch: int) -> dict[str, Any]:
        """The checkpoint's state inside the present epoch, `batch` batches into it, counting its unfinished
        seconds."""
        return {"epoch": self.epoch, "step": self.step, "batch": batch,
                **self._seconds(time.perf_counter() - self.epoch_start)}

    def _seconds(self, unfinished: float = 0.0) -> dict[str, float]:
        """{"seconds": training time so far}; nothing where an older checkpoint did not keep it."""
        if self.seconds_before is None:
            return {}
        return {"seconds": round(self.seconds_before + sum(self.seconds) + unfinished, 3)}
