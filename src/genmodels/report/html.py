"""The comparison report as one self-contained HTML page: every picture a base64 PNG data URI,
no external CSS, JS or fonts, so the file can be mailed, archived or opened offline.

Rendering only: `compare.py` gathers what each run has; this module turns it into a page."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from fnmatch import fnmatch
from html import escape
from string import Template

MISSING = "\u2013"  # en dash

# Which way is better, per metric name (shell-style patterns, first match wins; None: no direction).
DIRECTION: dict[str, str | None] = {
    "*_stderr": None, "*_std": None, "*_samples": None, "*_sigma": None, "*_images": None,
    "*_sse": "lower", "fid": "lower", "kid": "lower", "test_error": "lower", "nelbo": "lower",
    "*log_likelihood*": "higher", "elbo": "higher", "*accuracy*": "higher", "precision": "higher",
    "recall": "higher", "density": "higher", "coverage": "higher", "class_entropy": "higher",
    # 1 is ideal (as sharp, as varied as the data), so neither direction is better; collapsed is a verdict.
    "*sharpness": None, "diversity": None, "collapsed": None,
}

# Picture rows of the report, in order: key -> heading.
SECTIONS = {
    "samples": "Samples",
    "reconstructions": "Reconstructions (test originals above their reconstructions)",
    "interpolation": "Interpolations in latent space",
    "latent": "Latent space (test codes coloured by label)",
    "curves": "Training curves",
}


@dataclass
class RunSummary:
    """What the report shows of one run: its label, a one-line description, its eval.json (None if
    it has none) and, per section, PNG bytes or a short note saying why there is no picture."""

    name: str
    about: str = ""
    metrics: dict | None = None
    pictures: dict[str, bytes | str] = field(default_factory=dict)


def direction(metric: str) -> str | None:
    for pattern, way in DIRECTION.items():
        if fnmatch(metric, pattern):
            return way
    return None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_value(v) -> str:
    """A metric value as short text: floats to about four significant figures, lists as sparklines."""
    if v is None:
        return MISSING
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v) or v == 0:
            return str(v) if v != 0 else "0"
        a = abs(v)
        return f"{v:.1f}" if a >= 100 else f"{v:.4g}" if a >= 0.01 else f"{v:.2e}"
    if isinstance(v, (list, tuple)):
        if v and all(_is_number(x) for x in v):
            return _sparkline(v)
        return ", ".join(format_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {format_value(x)}" for k, x in v.items())
    return str(v)


def _sparkline(values) -> str:
    """A list of numbers (a class histogram, say) as one block character per entry."""
    blocks = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
    top = max(values)
    low = min(0, min(values))
    span = (top - low) or 1
    return "".join(blocks[min(7, int((x - low) / span * 7.999))] for x in values)


def best_columns(values: list, way: str | None) -> set[int]:
    """Indices of the best numeric values in a row (ties all marked); none without a direction
    or with fewer than two different values to compare."""
    numbers = {i: v for i, v in enumerate(values) if _is_number(v) and math.isfinite(v)}
    if way is None or len(set(numbers.values())) < 2:  # nothing to choose between (a shared baseline, say)
        return set()
    best = (min if way == "lower" else max)(numbers.values())
    return {i for i, v in numbers.items() if v == best}


def metric_table(runs: list[RunSummary]) -> str:
    """Rows: the union of metric names, in first-seen order; columns: runs."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in (r.metrics or {}) if k not in keys]
    head = "".join(f"<th>{escape(r.name)}<div class=about>{escape(r.about)}</div>{_flag(r)}</th>" for r in runs)
    rows = []
    for key in keys:
        values = [(r.metrics or {}).get(key) for r in runs]
        way = direction(key)
        best = best_columns(values, way)
        arrow = {"lower": " \u2193", "higher": " \u2191", None: ""}[way]
        cells = "".join(
            f"<td{' class=best' if i in best else ''}{_title(v)}>{escape(format_value(v))}</td>"
            for i, v in enumerate(values))
        rows.append(f"<tr><th>{escape(key)}<span class=way>{arrow}</span></th>{cells}</tr>")
    missing = [r.name for r in runs if r.metrics is None]
    notes = "".join(f"<p class=note><b class=flag>{escape(r.name)} collapsed</b>: its samples cover few classes or "
                    "little of the test images (class_entropy, recall), or are near copies of one another "
                    "(diversity); see its samples below.</p>" for r in runs if _collapsed(r))
    notes += "".join(f"<p class=note>{escape(n)} has no eval.json: <code>genmodels evaluate {escape(n)}</code> "
                    "fills it.</p>" for n in missing)
    if not keys:
        return notes or "<p class=note>No run has an eval.json yet.</p>"
    return (f"<div class=scroll><table><thead><tr><th>metric</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{notes}")


def _collapsed(run: RunSummary) -> bool:
    return (run.metrics or {}).get("collapsed") is True


def _flag(run: RunSummary) -> str:
    """A red mark under the name of a run whose evaluation found it collapsed (evaluation.collapse_verdict)."""
    return "<div class=flag>collapsed</div>" if _collapsed(run) else ""


def _title(v) -> str:
    """The full value as a tooltip where the cell shows it shortened."""
    return f' title="{escape(str(v))}"' if isinstance(v, (list, tuple, dict, float)) else ""


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def picture_rows(runs: list[RunSummary]) -> str:
    parts = []
    for key, heading in SECTIONS.items():
        if not any(key in r.pictures for r in runs):
            continue
        figures = []
        for r in runs:
            item = r.pictures.get(key, "not available")
            body = (f'<img src="{png_uri(item)}" alt="{escape(key)} of {escape(r.name)}" class={escape(key)}>'
                    if isinstance(item, bytes) else f"<div class=note>{escape(item)}</div>")
            figures.append(f"<figure>{body}<figcaption>{escape(r.name)}</figcaption></figure>")
        parts.append(f"<h2>{escape(heading)}</h2><div class=row>{''.join(figures)}</div>")
    return "".join(parts)


PAGE = Template("""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>$title</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#243447;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.8}
main{padding:8px 24px 40px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e2e2e2;padding:3px 10px;text-align:right;white-space:nowrap}
thead th{background:#eef1f5;text-align:center;vertical-align:bottom}
tbody th{text-align:left;font-weight:500;position:sticky;left:0;background:#f4f4f4}
thead th:first-child{position:sticky;left:0;z-index:1}
td.best{background:#dff3e3;font-weight:700}
.flag{color:#b3261e;font-weight:700}
.way{color:#888;font-weight:400}.about{font-weight:400;font-size:11px;color:#666}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;padding:6px;text-align:center}
figcaption{font-size:12px;color:#444;margin-top:4px}
figure img{display:block;max-width:280px;height:auto;image-rendering:pixelated}
figure img.latent,figure img.curves{max-width:440px;image-rendering:auto}
figure img.latent{max-width:560px}
figure img.interpolation{max-width:360px}
.note{color:#777;font-style:italic;font-size:12px;max-width:280px;padding:20px 8px}
p.note{padding:4px 0;max-width:none}
</style>
<script>
// Lets a headless browser (tests/test_report.py) confirm every embedded picture decoded.
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) if (images[i].complete && images[i].naturalWidth > 0) ok++;
  document.body.setAttribute("data-images-loaded", ok + "/" + images.length);
});
</script></head>
<body><header><h1>$title</h1><p>$subtitle</p></header><main>
<h2>Test metrics</h2>
<p class=note>Best value per row in bold green where the direction is known (\u2193 lower is better,
\u2191 higher is better); $dash: not measured for that run.</p>
$table
$pictures
</main></body></html>
""")


def render(runs: list[RunSummary], title: str = "genmodels comparison") -> str:
    """The whole page as one string."""
    subtitle = f"{len(runs)} run{'s' if len(runs) != 1 else ''}: " + ", ".join(r.name for r in runs)
    return PAGE.substitute(title=escape(title), subtitle=escape(subtitle), dash=MISSING,
                           table=metric_table(runs), pictures=picture_rows(runs))
