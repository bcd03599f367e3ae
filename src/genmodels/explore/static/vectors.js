// genmodels explore: how a vector run's outputs are drawn (loaded before explore.js, which calls these).
// Every number here is in the data's own units: the server undoes the run's standardisation.
// 2-D data: each vector is a point of the data plane, the big canvas shows the test points coloured by class
// and, on top, the decoded point, the walk, the samples and the drag trail. Wider data: each vector is a line
// over its columns, each column scaled to the test vectors' extent, over a grey band of their middle 90%.
"use strict";

const TRAIL = "#ef6c00", PATH = "#1a237e", NOW = "#d50000";
const OTHERS = ["#00897b", "#6a1b9a", "#f9a825", "#37474f"];  // compared runs' decoded points

const pointColour = (k) => (k ? OTHERS[(k - 1) % OTHERS.length] : NOW);  // the chosen run's, then compared runs'
const columnName = (j) => `x${j + 1}`;

function fmt(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(3);
}

function describeVector(values) {
  return values.map((v, j) => `${columnName(j)} = ${fmt(v)}`).join(", ");
}

// A vector as a small picture (a thumbnail, a figure): a point among the faint test points, or a column line.
function vectorCanvas(values, run, width, height) {
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height || width;
  c.className = "vector";
  c.title = describeVector(values);
  const g = c.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, c.width, c.height);
  if (values.length === 2 && run.data.points) {
    const v = planeView(run, c);
    g.fillStyle = "#cfd8dc";
    for (const p of run.data.points) { const [x, y] = planeXY(v, p); g.fillRect(x - 0.5, y - 0.5, 1.5, 1.5); }
    dot(g, planeXY(v, values), NOW, Math.max(2.5, c.width / 24));
  } else {
    columnLine(g, c, values, run);
  }
  return c;
}

function columnLine(g, c, values, run) {
  const { extent, band } = run.data, n = values.length, pad = 6, named = c.width > 100 && n <= 16;
  const low = named ? 16 : pad;  // room for the columns' names under a large chart
  const x = (j) => pad + 6 + (n === 1 ? (c.width - 2 * pad - 12) / 2 : j * (c.width - 2 * pad - 12) / (n - 1));
  const y = (j, v) => {
    const [lo, hi] = extent[j];
    const t = (v - lo) / ((hi - lo) || 1);
    return pad + (1 - Math.max(-0.05, Math.min(1.05, t))) * (c.height - pad - low);
  };
  if (named) {
    g.fillStyle = "#555";
    g.font = "10px system-ui, sans-serif";
    g.textAlign = "center";
    for (let j = 0; j < n; j++) g.fillText(columnName(j), x(j), c.height - 4);
  }
  g.fillStyle = "#e0e0e0";
  const w = Math.max(2, (c.width - 2 * pad) / Math.max(n, 2) * 0.4);
  for (let j = 0; j < n; j++) g.fillRect(x(j) - w / 2, y(j, band[j][1]), w, y(j, band[j][0]) - y(j, band[j][1]));
  g.strokeStyle = NOW;
  g.lineWidth = c.width > 100 ? 2 : 1.5;
  g.beginPath();
  values.forEach((v, j) => g[j ? "lineTo" : "moveTo"](x(j), y(j, v)));
  g.stroke();
  if (c.width > 100) for (let j = 0; j < n; j++) dot(g, [x(j), y(j, values[j])], NOW, 2.5);
}

function dot(g, [x, y], fill, r) {
  g.fillStyle = fill;
  g.strokeStyle = "#fff";
  g.lineWidth = 1;
  g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fill(); g.stroke();
}

// The data plane's view: the same scale on both axes (a ring stays round), the test points' extent and a margin.
function planeView(run, c) {
  const [[x0, x1], [y0, y1]] = run.data.extent;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, half = Math.max(x1 - x0, y1 - y0, 1e-9) * 0.56;
  return { x0: cx - half, x1: cx + half, y0: cy - half, y1: cy + half, w: c.width, h: c.height };
}

function planeXY(v, [x, y]) {  // a point outside the view is drawn on its edge, so it is never lost
  const px = (x - v.x0) / (v.x1 - v.x0) * v.w, py = (1 - (y - v.y0) / (v.y1 - v.y0)) * v.h;
  return [Math.max(3, Math.min(v.w - 3, px)), Math.max(3, Math.min(v.h - 3, py))];
}

function planeFrom(v, px, py) {
  return [v.x0 + px / v.w * (v.x1 - v.x0), v.y0 + (1 - py / v.h) * (v.y1 - v.y0)];
}

// The big data plane: the test points, then what the page has decoded (state.plane, kept by explore.js).
function drawPlane() {
  const run = state.run, c = $("plane"), g = c.getContext("2d"), v = planeView(run, c), p = state.plane;
  const labels = run.data.labels;
  g.clearRect(0, 0, c.width, c.height);
  g.globalAlpha = 0.55;
  run.data.points.forEach((pt, i) => {
    const [x, y] = planeXY(v, pt);
    g.fillStyle = labels ? PALETTE[labels[i] % PALETTE.length] : "#90a4ae";
    g.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  g.globalAlpha = 1;
  polyline(g, v, p.trail, TRAIL, 2);
  polyline(g, v, p.path, PATH, 1.5);
  p.path.forEach((pt, k) => dot(g, planeXY(v, pt), PATH, k === 0 || k === p.path.length - 1 ? 5 : 3));
  for (const pt of p.samples) dot(g, planeXY(v, pt), "#212121", 3.5);
  p.every.forEach((pt, k) => dot(g, planeXY(v, pt), PALETTE[k % PALETTE.length], 4.5));  // one code, each class
  if (p.own) marker(g, planeXY(v, p.own), "#000", "star");
  p.now.forEach((pt, k) => {
    if (pt && k) dot(g, planeXY(v, pt), pointColour(k), 5);
    else if (pt) marker(g, planeXY(v, pt), NOW, "cross");
  });
}

function polyline(g, v, pts, colour, width) {
  if (pts.length < 2) return;
  g.strokeStyle = colour;
  g.lineWidth = width;
  g.beginPath();
  pts.forEach((pt, k) => { const [x, y] = planeXY(v, pt); g[k ? "lineTo" : "moveTo"](x, y); });
  g.stroke();
}

function planeLegend() {
  const run = state.run, box = $("planelegend");
  box.replaceChildren();
  const seen = run.data.labels ? [...new Set(run.data.labels)].sort((a, b) => a - b) : [];
  for (const label of seen) {
    const span = document.createElement("span");
    span.style.setProperty("--c", PALETTE[label % PALETTE.length]);
    span.textContent = run.data.classes ? run.data.classes[label] : `mode ${label}`;
    box.append(span);
  }
}

// A click on a 2-D vector run's data plane: that point encoded (a model that encodes), and its reconstruction.
async function clickPlane(event) {
  const c = $("plane"), r = c.getBoundingClientRect();
  const p = planeFrom(planeView(state.run, c), (event.clientX - r.left) * c.width / r.width,
                      (event.clientY - r.top) * c.height / r.height);
  if (!state.run.encodes) {
    say("This model has no encoder, so a point of the plane has no code; move the sliders or draw samples.");
    return;
  }
  const answer = await api(runPath(state.run, "decode"), { targets: [{ vector: p }], labels: labelsFor(state.run) })
    .catch(failed);
  if (!answer) return;
  state.plane.own = p;
  state.own = { code: answer.codes[0], input: p };  // the point itself, beside its reconstruction
  await setCode(answer.codes[0], null, `the code of the point (${fmt(p[0])}, ${fmt(p[1])}) of the data plane`);
}

// What the page says about a vector run's outputs, under "Decoded".
function vectorNote(run) {
  const d = run.shape[0];
  if (d === 2) {
    return `Each code decodes to a point of the data plane (red cross; data units, ${run.data.points.length} ` +
      `of the ${run.data.of} test points behind it). Walks are drawn as a blue path, samples as black dots` +
      ", and dragging on the latent map leaves an orange trail." +
      (run.encodes ? " Click the plane to encode that point: the star marks it, the cross its reconstruction." : "");
  }
  return `Each code decodes to a vector of ${d} numbers in the data's units: the red line joins them, each ` +
    "column scaled to the test vectors' range (grey: their middle 90%); hover a chart for its numbers.";
}
