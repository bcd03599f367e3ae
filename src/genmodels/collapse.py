"""The collapse watch: a warning when a run's fixed-noise samples come to look alike (docs/ARCHITECTURE.md,
"One training step"). It reads the samples' diversity each epoch logs (metrics.diversity, 1: as varied as
the test images) against metrics.LOW_DIVERSITY.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .metrics import LOW_DIVERSITY


@dataclass
class CollapseWatch:
    """Warns when the samples' diversity falls below LOW_DIVERSITY after having been above it (a collapse), and
    when training ends below it; once per stretch below. An untrained generator's samples all look alike, so a
    low start alone is no warning."""

    family: str  # named in the warning
    advice: str  # the family's way out (Model.collapse_advice)
    varied: bool = False  # the diversity has been at or above LOW_DIVERSITY in some epoch
    warned: bool = False  # warned about the present stretch below LOW_DIVERSITY

    @classmethod
    def resumed(cls, family: str, advice: str, history: list[dict]) -> CollapseWatch:
        """The watch of a resumed run, which has been varied if any record in its history was."""
        return cls(family, advice, varied=any(r.get("diversity", 0.0) >= LOW_DIVERSITY for r in history))

    def check(self, epoch: int, value: float | None, last: bool) -> None:
        """Look at epoch `epoch`'s (0-based) diversity; None: the model draws no samples, or their diversity
        is undefined (metrics.diversity: identical test images), so there is nothing to watch. last: training ends."""
        if value is None:
            return
        low = value < LOW_DIVERSITY
        if low and not self.warned and (self.varied or last):
            fell = "fell to" if self.varied else "ended at"
            warnings.warn(f"After epoch {epoch + 1} the {self.family}'s samples look alike: their diversity "
                          f"{fell} {value:.2f}, where 1 is as varied as the test images, so it is collapsing onto a "
                          f"few images; {self.advice}.", RuntimeWarning, stacklevel=2)
            self.warned = True
        elif not low:
            self.warned, self.varied = False, True
