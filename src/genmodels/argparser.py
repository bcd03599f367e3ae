"""The command line's argparse parser, which suggests the closest subcommand, family or flag to a misspelled one
(Python 3.11's argparse does not)."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable
from typing import Any


def closest(word: str, names: Iterable[Any], cutoff: float = 0.6) -> str | None:
    """The name closest to a misspelled `word`, or None when none is close."""
    close = difflib.get_close_matches(word, [str(n) for n in names], n=1, cutoff=cutoff)
    return close[0] if close else None


class Parser(argparse.ArgumentParser):
    """argparse that suggests the closest subcommand, family or flag to a misspelled one (Python 3.11's argparse
    does not); subcommands are Parsers too, through add_subparsers' default parser class."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check of a value against `choices` (a private hook, in every Python 3), with a suggestion.
        if action.choices is not None and value not in action.choices:
            names = [str(c) for c in action.choices]
            near = closest(str(value), names)
            raise argparse.ArgumentError(action, f"invalid choice {value!r}{f'; did you mean {near}?' if near else ''} "
                                                 f"(choose from {', '.join(names)})")

    # namespace: Any, so the one signature covers argparse's overloads (typeshed types each separately)
    def parse_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> Any:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # said by the subcommand they were given to, with its usage, and the flags it has
            chosen = self._chosen(parsed)
            known = [s for a in chosen._actions for s in a.option_strings]
            hints = {}  # misspelled flag -> the flag meant
            for flag in (word.split("=", 1)[0] for word in extra if re.match(r"--?[A-Za-z]", word)):
                # 0.7: every flag shares its "--", so a lower cutoff pairs --foo with --out
                near = closest(flag.replace("_", "-"), known, cutoff=0.7)
                if near:
                    hints[flag] = near
            meant = " and ".join(m if len(hints) == 1 else f"{m} for {f}" for f, m in hints.items())
            chosen.error(f"unrecognized arguments: {' '.join(extra)}{f'; did you mean {meant}?' if hints else ''}")
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The innermost subcommand's parser that `parsed` went through."""
        parser: argparse.ArgumentParser = self
        while True:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(parsed, sub.dest, None) if sub is not None else None
            if sub is None or name not in sub.choices:
                return parser
            parser = sub.choices[name]
