"""The comparison report as one self-contained HTML page: every picture a base64 PNG data URI,
no external CSS, JS or fonts, so the file can be mailed, archived or opened offline.

Rendering only: `compare.py` gathers what each run has; this module turns it into a page."""

from __future__ import annotations

import base64
import math
import shlex
from html import escape
from string import Template
from typing import Any

from .catalog import Metric, headline_columns, metric
from .findings import findings
from .glossary import code, definitions, name_cell
from .summary import RunSummary

MISSING = "\u2013"  # en dash

# Picture rows of the report, in order: key -> heading.
SECTIONS = {
    "samples": "Samples",
    "reconstructions": "Reconstructions (test originals above their reconstructions)",
    "interpolation": "Interpolations in latent space",
    "latent": "Latent space (test codes coloured by label)",
    "curves": "Training curves",
}
# The same rows where every run is on vector data: scatters in the data's units (vectordata.save_points), over
# the true density's contours for a 2-D toy, else over the test points.
VECTOR_SECTIONS = {
    "samples": "Samples over the data's density (its contours for a 2-D toy, else the test points)",
    "progress": "Samples of one fixed noise batch at a few epochs of training: modes found or dropped",
    "reconstructions": "Reconstructions of test points, in the data's units",
    "interpolation": "Interpolations in latent space, decoded into the data's units",
    "latent": "Latent space (test codes coloured by label; for a 2-D code, the decoder's image of a latent grid)",
    "curves": "Training curves",
}


def direction(key: str) -> str | None:
    """"lower", "higher" or "ideal" for a run's own metric with a direction; None for the rest."""
    m = metric(key)
    return m.better if m.kind == "own" else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_value(v: Any) -> str:
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


def _sparkline(values: list[float] | tuple[float, ...]) -> str:
    """A list of numbers (a class histogram, say) as one block character per entry."""
    blocks = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
    top = max(values)
    low = min(0, min(values))
    span = (top - low) or 1
    return "".join(blocks[min(7, int((x - low) / span * 7.999))] for x in values)


def best_columns(values: list, m: Metric, eligible: list[bool] | None = None) -> set[int]:
    """The index of the one best value in a row, as a set (empty when there is nothing to mark): only a
    run's own metrics with a direction compete, an ideal value is judged by the distance to it, runs not
    eligible (a collapsed model on a sample metric) are left out, and a tie marks nothing."""
    if not m.competes:
        return set()
    eligible = eligible or [True] * len(values)
    numbers = {i: v for i, v in enumerate(values) if eligible[i] and _is_number(v) and math.isfinite(v)}
    if len(numbers) < 2:
        return set()
    best_i = max(numbers, key=lambda i: m.score(numbers[i]))
    best, shown = m.score(numbers[best_i]), format_value(numbers[best_i])
    # A tie, also one the table cannot show apart (0.97210001 and 0.9721), marks nothing.
    winners = [i for i, v in numbers.items()
               if math.isclose(m.score(v), best, rel_tol=1e-9, abs_tol=1e-12) or format_value(v) == shown]
    return {best_i} if len(winners) == 1 else set()


def _eligible(runs: list[RunSummary], m: Metric) -> list[bool]:
    """A collapsed run's sample metrics and a conditional run's metrics given the label never count as best."""
    return [not (m.samples and r.collapsed) and not (m.given_label and r.conditional) for r in runs]


def _cells(values: list, marked: set[int]) -> str:
    return "".join(f"<td{' class=best' if i in marked else ''}{_title(v)}>{escape(format_value(v))}</td>"
                   for i, v in enumerate(values))


# -- the headline: one row per run, the few columns that matter for every family (declared in catalog.py) ---
def headline_table(runs: list[RunSummary]) -> str:
    heads = ["<th>run</th>", "<th>family</th>", "<th>code</th>"]
    rows = [[_run_name(r), f"<td>{escape(r.family or MISSING)}</td>", f"<td>{escape(format_value(r.code))}</td>"]
            for r in runs]
    for label, keys in headline_columns():
        found = [next(((k, (r.metrics or {})[k]) for k in keys if k in (r.metrics or {})), (None, None))
                 for r in runs]
        used = [k for k in keys if any(k == f for f, _ in found)]
        if not used:  # no run has it: no column
            continue
        m = metric(used[0])
        # Two metrics of one column (an importance-weighted estimate and an ELBO) are not ranked against each other.
        marked = best_columns([v for _, v in found], m, _eligible(runs, m)) if len(used) == 1 else set()
        if len(used) == 1 and m.stands_in:  # only the stand-in was measured: the heading says so
            label += f" / {m.stands_in}"
        heads.append(f"<th>{name_cell(used[0], label)}</th>")
        for i, (row, (k, v), r) in enumerate(zip(rows, found, runs)):
            stand_in = metric(k).stands_in if k is not None and len(used) > 1 else ""
            given = "given y" if k is not None and metric(k).given_label and r.conditional else ""
            marks = ", ".join(mark for mark in (stand_in, given) if mark)
            sup = f"<sup>{escape(marks)}</sup>" if marks else ""
            row.append(f"<td{' class=best' if i in marked else ''}>{escape(format_value(v))}{sup}</td>")
    heads.append("<th>training time</th>")
    for row, r in zip(rows, runs):
        row.append(f"<td>{escape(_duration(r.train_seconds))}</td>")
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return (f"<div class=scroll><table class=headline><thead><tr>{''.join(heads)}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def _run_name(run: RunSummary) -> str:
    done, planned = run.epochs or (0, 0)
    flags = ("<div class=flag>collapsed</div>" if run.collapsed else "") + (
        f"<div class=flag>{done}/{planned} epochs</div>" if done < planned else "")
    return f'<th title="{escape(run.about)}">{escape(run.name)}{flags}</th>'


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# -- every metric, folded ---------------------------------------------------------------------------------
KIND_ORDER = {"own": 0, "reference": 1, "info": 2}


def metric_keys(runs: list[RunSummary]) -> list[str]:
    """Every metric any run has, the run's own first, then references, then bookkeeping (first-seen order)."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in (r.metrics or {}) if k not in keys]
    return sorted(keys, key=lambda k: KIND_ORDER[metric(k).kind])


def constant(values: list, m: Metric) -> bool:
    """A reference or bookkeeping row that every run has, with one value (two runs at least): shown once.
    A run's own metric always keeps its row."""
    return (m.kind != "own" and len(values) >= 2 and None not in values
            and len({repr(v) for v in values}) == 1)


def metric_table(runs: list[RunSummary]) -> str:
    """Every metric (rows) of every run (columns); rows the same in every run are listed once beneath it."""
    keys = metric_keys(runs)
    head = "".join(f"<th>{escape(r.name)}<div class=about>{escape(r.about)}</div>{_flag(r)}</th>" for r in runs)
    rows, same = [], []
    for key in keys:
        values = [(r.metrics or {}).get(key) for r in runs]
        m = metric(key)
        if constant(values, m):
            same.append(f"{name_cell(key)} {escape(format_value(values[0]))}")
            continue
        marked = best_columns(values, m, _eligible(runs, m))
        cls = {"own": "", "reference": " class=ref", "info": " class=info"}[m.kind]
        label = name_cell(key) + (" <i>(reference)</i>" if m.kind == "reference" else "")
        rows.append(f"<tr{cls}><th>{label}</th>{_cells(values, marked)}</tr>")
    notes = "".join(f"<p class=note><b class=flag>{escape(r.name)} collapsed</b>: its samples cover few classes or "
                    "little of the test images (class_entropy, recall), or are near copies of one another "
                    "(diversity); see its samples below. Its sample metrics are never marked best.</p>"
                    for r in runs if r.collapsed)
    notes += "".join(f"<p class=note>{escape(r.name)} has no eval.json: <code>genmodels evaluate "
                     f"{escape(r.name)}</code> fills it.</p>" for r in runs if r.metrics is None)
    if not keys:
        return notes or "<p class=note>No run has an eval.json yet.</p>"
    shared = f"<p class=same>The same in every run: {'; '.join(same)}.</p>" if same else ""
    return (f"<div class=scroll><table class=full><thead><tr><th>metric</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{shared}{notes}")


def _flag(run: RunSummary) -> str:
    """A red mark under the name of a run whose evaluation found it collapsed (evaluation.collapse_verdict)."""
    return "<div class=flag>collapsed</div>" if run.collapsed else ""


def _title(v: Any) -> str:
    """The full value as a tooltip where the cell shows it shortened."""
    return f' title="{escape(str(v))}"' if isinstance(v, (list, tuple, dict, float)) else ""


def glossary(runs: list[RunSummary]) -> str:
    """Every metric shown: its meaning, which value is best, its unit and its caveat."""
    return definitions(metric_keys(runs))


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _aspect(png: bytes) -> float:
    """Width over height of a PNG, from its header (IHDR: width and height at bytes 16-24)."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return width / max(height, 1)


def picture_rows(runs: list[RunSummary]) -> str:
    parts = []
    for key, heading in (VECTOR_SECTIONS if runs and all(r.vectors for r in runs) else SECTIONS).items():
        if not any(key in r.pictures for r in runs):
            continue
        figures = []
        for r in runs:
            item = r.pictures.get(key, "not available")
            wide = " wide" if isinstance(item, bytes) and _aspect(item) > 1.6 else ""  # two panels side by side
            wide += " points" if r.vectors and key != "curves" else ""  # a plot, not pixels to enlarge
            body = (f'<img src="{png_uri(item)}" alt="{escape(key)} of {escape(r.name)}" class="{escape(key)}{wide}">'
                    if isinstance(item, bytes) else f"<div class=note>{escape(item)}</div>")
            figures.append(f"<figure>{body}<figcaption>{escape(r.name)}</figcaption></figure>")
        parts.append(f"<h2>{escape(heading)}</h2><div class=row>{''.join(figures)}</div>")
    return "".join(parts)


def explore_commands(runs: list[RunSummary]) -> str:
    """The `genmodels explore` command that opens these runs' latent spaces in the browser (a static page
    cannot start the server itself), and one command per run."""
    paths = [(r.name, path) for r in runs if (path := r.path)]
    if not paths:
        return ""
    each = "".join(f"<li>{escape(name)}: <code>{escape(_explore([p]))}</code></li>" for name, p in paths)
    return ("<h2>Explore in the browser</h2><p class=note>Run this from the folder the runs were named from; it "
            "prints a local address to open: the latent map, sliders, interpolation, samples and your own image. "
            "Codes of the same size decode side by side.</p><pre class=command>"
            f"{escape(_explore([p for _, p in paths]))}</pre><details class=each><summary>one run at a time</summary>"
            f"<ul>{each}</ul></details>")


def _explore(paths: list[str]) -> str:
    return "genmodels explore " + " ".join(shlex.quote(p) for p in paths)


def confusion_tables(runs: list[RunSummary]) -> str:
    """Each conditional run's Bayes classifier (bayes_confusion) as a table: row = true class, column = class chosen,
    counts of test images, each cell tinted by its share of the row (the diagonal green, the rest red)."""
    parts = []
    for r in runs:
        matrix = (r.metrics or {}).get("bayes_confusion")
        if not (isinstance(matrix, list) and matrix and all(isinstance(row, list) for row in matrix)):
            continue
        names = r.classes if r.classes and len(r.classes) == len(matrix) else [str(k) for k in range(len(matrix))]
        head = "".join(f"<th>{escape(name)}</th>" for name in names)
        rows = []
        for i, (name, row) in enumerate(zip(names, matrix)):
            total = sum(row) or 1
            cells = "".join(f'<td style="background:{_tint(count / total, i == j)}">{count}</td>'
                            for j, count in enumerate(row))
            rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
        accuracy = (r.metrics or {}).get("bayes_accuracy")
        caption = f"{r.name}" + (f": accuracy {format_value(accuracy)}" if _is_number(accuracy) else "")
        parts.append(f"<div class=scroll><table class=confusion><caption>{escape(caption)}</caption><thead><tr>"
                     f"<th>true \u2193 / chosen \u2192</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                     "</div>")
    if not parts:
        return ""
    return ("<h2>Bayes' rule as a classifier: confusion matrix</h2><p class=note>Each test image labelled argmax "
            "over y of log p(x|y) + log p(y) (bayes_accuracy); row: its true class, column: the class chosen, counts "
            f"of test images.</p><div class=row>{''.join(parts)}</div>")


def _tint(share: float, diagonal: bool) -> str:
    """A cell's background: white for none of its row, full green (right) or red (wrong) for all of it."""
    hue = "30,123,52" if diagonal else "179,38,30"
    return f"rgba({hue},{0.6 * share:.2f})" if share > 0 else "#fff"


def findings_list(runs: list[RunSummary]) -> str:
    """Warnings about runs (collapsed, unfinished, not evaluated) first, then the checked claims and notes."""
    icons = {"warn": ("\u26a0", "warn"), "pass": ("\u2713", "pass"), "fail": ("\u2717", "fail"),
             "note": ("\u2022", "seen")}
    found = sorted(findings(runs), key=lambda f: f.verdict != "warn")
    items = "".join(f"<li class={icons[f.verdict][1]}><span class=icon>{icons[f.verdict][0]}</span> {code(f.text)}</li>"
                    for f in found)
    return f"<ul class=findings>{items}</ul>" if items else "<p class=note>Nothing to compare yet.</p>"


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#243447;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.8}
main{padding:8px 24px 40px;max-width:1800px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
a{color:inherit;text-decoration:none;border-bottom:1px dotted #999}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e2e2e2;padding:3px 10px;text-align:right;white-space:nowrap}
thead th{background:#eef1f5;text-align:center;vertical-align:bottom}
tbody th{text-align:left;font-weight:500;position:sticky;left:0;background:#f4f4f4}
thead th:first-child{position:sticky;left:0;z-index:1}
table.full thead th{white-space:normal;min-width:90px;max-width:170px;overflow-wrap:anywhere}
table.headline tbody th{position:static;white-space:normal;overflow-wrap:anywhere;max-width:220px}
tr.ref th,tr.ref td{color:#666;background:#f7f7f7;font-style:italic}
tr.info th,tr.info td{color:#888}
td.best{background:#dff3e3;font-weight:700}
sup{font-size:9px;color:#777;margin-left:2px}
.flag{color:#b3261e;font-weight:700}
.way{color:#888;font-weight:400}.about{font-weight:400;font-size:11px;color:#666}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;padding:6px;text-align:center}
figcaption{font-size:12px;color:#444;margin-top:4px}
figure img{display:block;max-width:280px;height:auto;image-rendering:pixelated}
figure img.latent,figure img.curves{max-width:440px;image-rendering:auto}
figure img.latent{max-width:420px}figure img.latent.wide{max-width:700px}
figure img.interpolation{max-width:360px}
figure img.points{max-width:360px;image-rendering:auto}figure img.points.wide{max-width:700px}
figure img.progress.points{max-width:700px}
.note{color:#777;font-style:italic;font-size:12px;max-width:280px;padding:20px 8px}
p.note,p.same{padding:4px 0;max-width:none}p.same{font-size:12px;color:#555}
ul.findings{list-style:none;padding:0;margin:0;max-width:1100px}ul.findings li{margin:4px 0}
.icon{display:inline-block;width:1.2em;font-weight:700}li.pass .icon{color:#1e7b34}li.fail .icon{color:#b3261e}
li.seen .icon{color:#777}li.warn .icon{color:#b26a00}
details summary{cursor:pointer;font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;font-weight:700}
pre.command{background:#fff;border:1px solid #e2e2e2;padding:8px 12px;white-space:pre-wrap;overflow-wrap:anywhere;\
max-width:1100px}
details.each summary{font-size:13px;margin:6px 0;border:0;font-weight:400}
table.confusion caption{font-size:12px;color:#444;padding:2px}table.confusion td{min-width:28px}
dl.glossary{max-width:1100px}dl.glossary dt{font-weight:700;margin-top:8px}dl.glossary dd{margin:2px 0 0 20px}
"""  # the report's style, which the lessons page shares

PAGE = Template("""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width"><title>$title</title>
<style>$css</style>
<script>
// Lets a headless browser (tests/test_report.py) check the page: every embedded picture decoded, and
// the headline table's width against the window's.
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) if (images[i].complete && images[i].naturalWidth > 0) ok++;
  document.body.setAttribute("data-images-loaded", ok + "/" + images.length);
  var headline = document.querySelector("table.headline");
  if (headline) document.body.setAttribute("data-headline-fits",
    Math.ceil(headline.getBoundingClientRect().right) + "/" + document.documentElement.clientWidth);
});
</script></head>
<body><header><h1>$title</h1><p>$subtitle</p></header><main>
<h2>At a glance</h2>
<p class=note>One row per run. Best value per column in bold green, when one run is best (\u2193 lower is better,
\u2191 higher, \u21921 closest to 1); $dash: not measured for that run. Every name links to the glossary.$given</p>
$headline
<h2>What these runs show</h2>
$findings
$confusion
<details><summary>All metrics</summary>
<p class=note>Reference rows (PCA and raw pixels, in grey) are baselines measured beside each run, never marked best;
a collapsed model's sample metrics are never marked best either.</p>
$table
</details>
$pictures
$explore
<h2>Glossary</h2>
$glossary
</main></body></html>
""")


def render(runs: list[RunSummary], title: str = "genmodels comparison") -> str:
    """The whole page as one string."""
    subtitle = f"{len(runs)} run{'s' if len(runs) != 1 else ''}: " + ", ".join(r.name for r in runs)
    given = (" <sup>given y</sup>: a conditional model's value given each image's label (log p(x|y)), never marked "
             "best against the others." if any(r.conditional for r in runs) else "")
    return PAGE.substitute(css=CSS, title=escape(title), subtitle=escape(subtitle), dash=MISSING, given=given,
                           headline=headline_table(runs), findings=findings_list(runs),
                           confusion=confusion_tables(runs), table=metric_table(runs),
                           pictures=picture_rows(runs), explore=explore_commands(runs), glossary=glossary(runs))
