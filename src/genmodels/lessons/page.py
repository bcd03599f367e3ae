"""The lessons' page (one self-contained HTML file in the comparison report's style: its CSS, every picture a PNG
data URI) and their record, lessons.json."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from ..report import html as report_html
from .lesson import Lesson, Outcome

STYLE = report_html.CSS + """
section.lesson{background:#fff;border:1px solid #e2e2e2;padding:4px 16px 12px;margin:14px 0;max-width:1100px}
section.lesson h2{border:0;margin:10px 0 4px}
.verdict{display:inline-block;padding:1px 8px;border-radius:3px;font-weight:700;font-size:13px}
.verdict.holds{background:#dff3e3;color:#1e7b34}.verdict.fails{background:#fbe3e1;color:#b3261e}
dl.lesson dt{font-weight:700;margin-top:8px}dl.lesson dd{margin:2px 0 0 0}
table.numbers td,table.numbers th{text-align:left;white-space:normal}
figure img.lesson{max-width:560px}
"""

PAGE = Template("""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width"><title>$title</title>
<style>$style</style>
<script>
// Lets a headless browser (tests/test_lessons.py) check the page: every embedded picture decoded.
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) if (images[i].complete && images[i].naturalWidth > 0) ok++;
  document.body.setAttribute("data-images-loaded", ok + "/" + images.length);
});
</script></head>
<body><header><h1>$title</h1><p>$subtitle</p></header><main>
$overview
$lessons
</main></body></html>
""")


def record(lesson: Lesson, outcome: Outcome, runs: list[Path], command: str) -> dict[str, Any]:
    """One lesson's entry of lessons.json."""
    return {"statement": lesson.statement, "criterion": lesson.criterion, "verdict": outcome.verdict,
            "numbers": outcome.numbers, "runs": [str(r) for r in runs], "command": command}


def write_json(records: dict[str, dict[str, Any]]) -> bytes:
    return (json.dumps(records, indent=2) + "\n").encode()


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _numbers(numbers: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{escape(k.replace('_', ' '))}</th><td>{escape(_value(v))}</td></tr>"
                   for k, v in numbers.items())
    return f"<table class=numbers><tbody>{rows}</tbody></table>"


def _figure(caption: str, path: Path) -> str:
    data = path.read_bytes()
    return (f"<figure><img class=lesson alt='{escape(caption)}' src='{report_html.png_uri(data)}'>"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def section(lesson: Lesson, outcome: Outcome, commands: list[str], command: str) -> str:
    """One lesson: statement and paper, criterion, experiment and commands, picture, numbers, verdict."""
    css = "holds" if outcome.holds else "fails"
    repeat = "\n".join([command, *commands])
    figures = "".join(_figure(c, p) for c, p in outcome.pictures)
    return f"""<section class=lesson id="{escape(lesson.name)}">
<h2>{escape(lesson.name)} <span class="verdict {css}">{escape(outcome.verdict)} here</span></h2>
<dl class=lesson>
<dt>Statement</dt><dd>{escape(lesson.statement)} <span class=about>({escape(lesson.paper)})</span></dd>
<dt>Criterion, fixed before the numbers</dt><dd>{escape(lesson.criterion)}</dd>
<dt>Experiment</dt><dd>{escape(lesson.experiment)}</dd>
<dt>To repeat it (the lesson, then each of its runs alone)</dt><dd><pre class=command>{escape(repeat)}</pre></dd>
<dt>Picture</dt><dd><div class=row>{figures}</div></dd>
<dt>Numbers</dt><dd>{_numbers(outcome.numbers)}</dd>
<dt>Verdict</dt><dd><b>{escape(outcome.verdict)} here</b>: {escape(outcome.reason)}.</dd>
</dl></section>"""


def overview(rows: list[tuple[Lesson, Outcome | None]]) -> str:
    """The list at the top: every lesson run, its verdict, and those waiting for other work."""
    items = []
    for lesson, outcome in rows:
        if outcome is None:
            items.append(f"<li class=seen><span class=icon>\u2026</span>{escape(lesson.name)}: waits for "
                         f"{escape(lesson.waits_for or '')}</li>")
        else:
            css, icon = ("pass", "\u2713") if outcome.holds else ("fail", "\u2717")
            items.append(f"<li class={css}><span class=icon>{icon}</span><a href='#{escape(lesson.name)}'>"
                         f"{escape(lesson.name)}</a>: {escape(outcome.verdict)} here</li>")
    return f"<h2>The lessons</h2><ul class=findings>{''.join(items)}</ul>"


def render(sections: list[str], rows: list[tuple[Lesson, Outcome | None]], subtitle: str) -> str:
    return PAGE.substitute(title="genmodels lessons: the lecture's statements as experiments", style=STYLE,
                           subtitle=escape(subtitle), overview=overview(rows), lessons="\n".join(sections))
