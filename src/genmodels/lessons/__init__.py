"""`genmodels lessons`: the lecture's statements as experiments, each with its criterion fixed before the numbers,
a picture, the numbers and a verdict (docs/lessons.md)."""

from __future__ import annotations

from .lesson import Context, Lesson, Outcome
from .run import DEFAULT_BUDGET, LESSONS, choose, listing, run_lessons

__all__ = ["DEFAULT_BUDGET", "LESSONS", "Context", "Lesson", "Outcome", "choose", "listing", "run_lessons"]
