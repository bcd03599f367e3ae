"""The glossary as the page shows it, read from the metrics' declarations (catalog.py): each metric's name
linked to its entry with the entry as its tooltip and its direction as an arrow, and the entries themselves."""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from .catalog import Metric, metric


def code(text: str) -> str:
    """Escaped text whose `backquoted` parts are set as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def arrow(m: Metric) -> str:
    """Which way is better, as an arrow: down, up, or towards the ideal; nothing for a metric that never competes."""
    if not m.competes:
        return ""
    return {"lower": " \u2193", "higher": " \u2191"}.get(m.better or "") or f" \u2192{m.ideal:g}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def name_cell(key: str, label: str | None = None) -> str:
    """A metric's name linked to its glossary entry, with the entry as its tooltip."""
    m = metric(key)
    tip = f"{m.meaning} {_sentence(m.rule)}." + (f" Caveat: {m.caveat}." if m.caveat else "")
    return (f'<a href="#g-{escape(key)}" title="{escape(tip)}">{escape(label or key)}</a>'
            f"<span class=way>{escape(arrow(m))}</span>")


def definitions(keys: Iterable[str]) -> str:
    """The glossary of `keys`: each one's meaning, which value is best, its unit and its caveat."""
    items = []
    for key in keys:
        m = metric(key)
        parts = [code(m.meaning), f"<b>{escape(_sentence(m.rule))}</b>."]
        if m.unit:
            parts.append(f"Unit: {escape(m.unit)}.")
        if m.caveat:
            parts.append(f"<i>Caveat: {code(m.caveat)}.</i>")
        items.append(f'<dt id="g-{escape(key)}">{escape(key)}</dt><dd>{" ".join(parts)}</dd>')
    return f"<dl class=glossary>{''.join(items)}</dl>" if items else ""
