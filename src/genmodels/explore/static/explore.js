// genmodels explore: the page. Plain JavaScript, no build step, nothing fetched but this server's /api.
// State: the runs the server loaded, the chosen run, and the current code (what "Decoded" shows).
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, code: null, point: null, own: null, a: null, b: null, compare: new Set(),
                view: null, hover: -1, pending: 0 };

// -- talking to the server: every failure becomes one sentence in the status line ----------------------------
async function api(path, body, raw) {
  const init = body === undefined ? {} : { method: "POST", body: raw ? body : JSON.stringify(body),
    headers: { "Content-Type": raw ? (body.type || "application/octet-stream") : "application/json" } };
  state.pending++;
  document.body.dataset.pending = state.pending;
  try {
    const response = await fetch(path, init);
    let data;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok || data === null) {
      throw new Error(data && data.error ? data.error : `The server answered ${response.status} without a reason.`);
    }
    return data;
  } finally {
    state.pending--;
    document.body.dataset.pending = state.pending;
  }
}

function say(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", !!isError);
}

function failed(err) {
  const text = err instanceof TypeError ? "The explorer's server cannot be reached; is `genmodels explore` still running?"
                                        : err.message;
  say(text, true);
}

const runPath = (run, what) => `/api/runs/${encodeURIComponent(run.key)}/${what}`;

// -- start: the runs, the selector, then the chosen run's panels --------------------------------------------
async function start() {
  try {
    state.runs = (await api("/api/runs")).runs;
  } catch (err) { failed(err); return; }
  const select = $("run");
  for (const run of state.runs) {
    const option = document.createElement("option");
    option.value = run.key;
    option.textContent = `${run.name} (${run.family}, ${run.dim}-d code)`;
    select.append(option);
  }
  select.addEventListener("change", () => choose(select.value));
  wire();
  await choose(state.runs[0].key);
  document.body.dataset.ready = "1";
}

async function choose(key) {
  const run = state.runs.find((r) => r.key === key);
  state.run = run;
  state.code = null; state.point = null; state.own = null; state.a = null; state.b = null; state.hover = -1;
  const hasMap = !!run.map;
  $("mapbox").hidden = !hasMap;
  $("samplebox").hidden = !run.samples;
  $("ownbox").hidden = false;
  $("runinfo").textContent = `${run.family}, codes of ${run.dim} dimensions, images ${run.shape[1]}×${run.shape[2]}` +
    (run.ema ? ", samples from the averaged (EMA) generator" : "");
  $("mapnote").textContent = hasMap ? `${run.map.note} ${run.map.points.length} of the ${run.map.of} test images.` : "";
  $("walk").disabled = true;
  for (const id of ["aimg", "bimg"]) { $(id).removeAttribute("src"); $(id).hidden = true; }
  for (const id of ["path", "samples", "own", "decoded"]) $(id).replaceChildren();
  buildCompare();
  buildSliders();
  if (hasMap) { fitView(); drawMap(); legend(); }
  say(hasMap ? "Ready: click the map, move a slider, or drop an image." :
               "Ready: this model has no encoder, so there is no map of the data; draw samples and move z.");
  await setCode(run.centre.slice(), null, centreName(run));
}

function buildCompare() {
  const box = $("compare");
  box.replaceChildren();
  state.compare = new Set();
  const others = state.runs.filter((r) => r.key !== state.run.key && r.dim === state.run.dim);
  if (!others.length) return;
  box.append("Same code in: ");
  for (const run of others) {
    const label = document.createElement("label");
    const check = document.createElement("input");
    check.type = "checkbox";
    check.value = run.key;
    check.addEventListener("change", () => {
      if (check.checked) state.compare.add(run.key); else state.compare.delete(run.key);
      decodeCurrent();
    });
    label.append(check, ` ${run.name}`);
    box.append(label);
  }
}

// -- the current code: decoded by the chosen run and by every run it is compared with -----------------------
let latest = 0;
async function setCode(code, origin, words) {
  state.code = code;
  state.origin = origin;
  $("currentnote").textContent = `Current code: ${words}.`;
  syncSliders();
  await decodeCurrent();
}

async function decodeCurrent() {
  const ticket = ++latest;
  const runs = [state.run, ...state.runs.filter((r) => state.compare.has(r.key))];
  try {
    const answers = await Promise.all(runs.map((r) => api(runPath(r, "decode"), { targets: [{ code: state.code }] })));
    if (ticket !== latest) return;  // a newer code was asked for meanwhile: show that one
    const figures = answers.map((a, i) => figure(a.images[0], runs[i].name));
    state.image = answers[0].images[0];
    if (state.origin && state.code === state.origin.code) {
      figures.unshift(figure(state.origin.image, `test image ${state.origin.index}`));
    }
    if (state.own && state.code === state.own.code) figures.unshift(figure(state.own.input, "your image"));
    $("decoded").replaceChildren(...figures);
    state.point = answers[0].points ? answers[0].points[0] : null;
    if (state.run.map) drawMap();
    clearError();
  } catch (err) { failed(err); }
}

function clearError() {
  if ($("status").classList.contains("error")) say("Ready.");
}

function figure(src, caption) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.src = src;
  img.alt = caption;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

// -- sliders over the latent dimensions ---------------------------------------------------------------------
function buildSliders() {
  const run = state.run;
  const box = $("sliders");
  box.replaceChildren();
  $("slidernote").textContent = run.dim > run.sliders.length
    ? `The ${run.sliders.length} of ${run.dim} dimensions along which the ${run.map ? "test codes vary most" : "prior is drawn first"}; each runs over ${run.map ? "the test codes' range" : "the prior's ±3σ"}.`
    : `Every dimension of the code, over ${run.map ? "the range of the test codes" : "the prior's ±3σ"}.`;
  for (const d of run.sliders) {
    const [lo, hi] = run.ranges[d];
    const row = document.createElement("div");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = `z[${d}]`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: lo, max: hi, step: (hi - lo) / 200 });
    input.dataset.dim = d;
    input.setAttribute("aria-label", `code dimension ${d}`);
    const value = document.createElement("output");
    input.addEventListener("input", () => {
      const code = state.code.slice();
      code[d] = parseFloat(input.value);
      value.textContent = code[d].toFixed(2);
      setCode(code, null, `moved along z[${d}]`);
    });
    row.append(name, input, value);
    box.append(row);
  }
}

function syncSliders() {
  for (const input of $("sliders").querySelectorAll("input")) {
    const d = +input.dataset.dim;
    input.value = state.code[d];
    input.nextSibling.textContent = state.code[d].toFixed(2);
  }
}

// -- the latent map: a canvas scatter, hover for the image, click to decode ----------------------------------
function fitView() {
  const pts = state.run.map.points;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const padX = (x1 - x0 || 1) * 0.06, padY = (y1 - y0 || 1) * 0.06;
  state.view = { x0: x0 - padX, x1: x1 + padX, y0: y0 - padY, y1: y1 + padY };
}

function toCanvas([x, y]) {
  const v = state.view, c = $("map");
  return [(x - v.x0) / (v.x1 - v.x0) * c.width, (1 - (y - v.y0) / (v.y1 - v.y0)) * c.height];
}

function fromCanvas(px, py) {
  const v = state.view, c = $("map");
  return [v.x0 + px / c.width * (v.x1 - v.x0), v.y0 + (1 - py / c.height) * (v.y1 - v.y0)];
}

function colour(i) {
  const labels = state.run.map.labels;
  return labels ? PALETTE[labels[i] % PALETTE.length] : "#607d8b";
}

function drawMap() {
  const c = $("map"), g = c.getContext("2d"), pts = state.run.map.points;
  g.clearRect(0, 0, c.width, c.height);
  g.globalAlpha = 0.7;
  for (let i = 0; i < pts.length; i++) {
    const [x, y] = toCanvas(pts[i]);
    g.fillStyle = colour(i);
    g.beginPath(); g.arc(x, y, 3, 0, 2 * Math.PI); g.fill();
  }
  g.globalAlpha = 1;
  if (state.own && state.own.point) marker(g, toCanvas(state.own.point), "#000", "star");
  if (state.point) marker(g, toCanvas(state.point), "#d50000", "cross");
}

function marker(g, [x, y], stroke, kind) {
  g.strokeStyle = stroke; g.lineWidth = 2.5;
  g.beginPath();
  if (kind === "cross") { g.moveTo(x - 8, y); g.lineTo(x + 8, y); g.moveTo(x, y - 8); g.lineTo(x, y + 8); }
  else { for (let k = 0; k < 10; k++) { const r = k % 2 ? 4 : 10, t = Math.PI * k / 5 - Math.PI / 2;
    g[k ? "lineTo" : "moveTo"](x + r * Math.cos(t), y + r * Math.sin(t)); } g.closePath(); }
  g.stroke();
}

function legend() {
  const box = $("legend"), map = state.run.map;
  box.replaceChildren();
  if (!map.labels) return;
  const seen = [...new Set(map.labels)].sort((a, b) => a - b);
  for (const label of seen) {
    const span = document.createElement("span");
    span.style.setProperty("--c", PALETTE[label % PALETTE.length]);
    span.textContent = map.classes ? map.classes[label] : `class ${label}`;
    box.append(span);
  }
}

function nearest(px, py) {
  let best = -1, bestD = 36;  // within 6 px
  const pts = state.run.map.points;
  for (let i = 0; i < pts.length; i++) {
    const [x, y] = toCanvas(pts[i]);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  return best;
}

const images = new Map();  // test image index -> data URL, fetched once per run
async function testImage(index) {
  const key = `${state.run.key}/${index}`;
  if (!images.has(key)) images.set(key, (await api(runPath(state.run, `images/${index}`))).image);
  return images.get(key);
}

function canvasXY(event) {
  const r = $("map").getBoundingClientRect();
  return [(event.clientX - r.left) * $("map").width / r.width, (event.clientY - r.top) * $("map").height / r.height];
}

async function hover(event) {
  const [px, py] = canvasXY(event);
  const i = nearest(px, py);
  const tip = $("tip");
  if (i < 0) { tip.hidden = true; state.hover = -1; return; }
  tip.style.left = `${Math.min(px + 12, 420)}px`;
  tip.style.top = `${Math.min(py + 12, 420)}px`;
  if (i === state.hover) return;
  state.hover = i;
  const map = state.run.map;
  $("tiptext").textContent = map.labels ? (map.classes ? map.classes[map.labels[i]] : `class ${map.labels[i]}`) : `image ${i}`;
  try {
    const src = await testImage(i);
    if (state.hover === i) { $("tipimg").src = src; tip.hidden = false; }
  } catch (err) { failed(err); }
}

async function click(event) {
  const [px, py] = canvasXY(event);
  const i = nearest(px, py);
  if (i >= 0) {
    const answer = await api(runPath(state.run, "decode"), { targets: [{ index: i }] }).catch(failed);
    if (!answer) return;
    state.origin = { index: i, code: answer.codes[0], image: await testImage(i).catch(failed) };
    await setCode(state.origin.code, state.origin, `the code of test image ${i}`);
  } else {
    const point = fromCanvas(px, py);
    const answer = await api(runPath(state.run, "decode"), { targets: [{ point }] }).catch(failed);
    if (!answer) return;
    await setCode(answer.codes[0], null, `the map point (${point[0].toFixed(2)}, ${point[1].toFixed(2)})`);
  }
}

// -- interpolation between two codes --------------------------------------------------------------------------
async function walk() {
  const body = { a: { code: state.a.code }, b: { code: state.b.code },
                 steps: Math.max(2, Math.min(32, parseInt($("steps").value, 10) || 10)), mode: $("mode").value };
  try {
    const answer = await api(runPath(state.run, "interpolate"), body);
    $("path").replaceChildren(...answer.images.map((src, k) => thumb(src, `step ${k + 1}`,
      () => setCode(answer.codes[k], null, `step ${k + 1} of the walk`))));
    clearError();
  } catch (err) { failed(err); }
}

function centreName(run) {
  return run.encodes ? "the mean of the test codes" : "the prior's centre, z = 0";
}

function setEnd(which) {
  state[which] = { code: state.code.slice() };
  $(`${which}img`).src = state.image;
  $(`${which}img`).hidden = false;
  $("walk").disabled = !(state.a && state.b);
}

function thumb(src, alt, onclick) {
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  if (onclick) img.addEventListener("click", onclick);
  return img;
}

// -- sampling from the prior ----------------------------------------------------------------------------------
async function drawSamples() {
  const seed = Math.max(0, parseInt($("seed").value, 10) || 0);
  try {
    const answer = await api(runPath(state.run, "sample"), { seed, n: 16 });
    $("samples").replaceChildren(...answer.images.map((src, k) => thumb(src, `sample ${k + 1}`,
      () => setCode(answer.codes[k], null, `sample ${k + 1} of seed ${seed}`))));
    clearError();
  } catch (err) { failed(err); }
}

// -- your own image: dropped or chosen, sent as it is; the server resizes it ----------------------------------
async function upload(file) {
  if (!file) return;
  try {
    const answer = await api(runPath(state.run, `upload?invert=${$("invert").value}`), file, true);
    const figures = [figure(answer.input, answer.inverted ? "your image (inverted)" : "your image")];
    if (answer.image) figures.push(figure(answer.image, "reconstruction"));
    $("own").replaceChildren(...figures);
    if (answer.code) {
      state.own = { code: answer.code, point: answer.point, input: answer.input };
      await setCode(answer.code, null, `the code of your image ${file.name ? `(${file.name})` : ""}`.trim());
      if (state.run.map) drawMap();
    }
    say(`Your image was ${answer.inverted ? "inverted to match the data's background, " : ""}resized to ` +
        `${state.run.shape[1]}×${state.run.shape[2]}` + (answer.code ? " and encoded; the star marks it on the map."
        : "; this model has no encoder, so it cannot be reconstructed or placed."));
  } catch (err) { failed(err); }
}

function wire() {
  const map = $("map");
  map.addEventListener("mousemove", hover);
  map.addEventListener("mouseleave", () => { $("tip").hidden = true; state.hover = -1; });
  map.addEventListener("click", click);
  $("centre").addEventListener("click", () => setCode(state.run.centre.slice(), null, centreName(state.run)));
  $("seta").addEventListener("click", () => setEnd("a"));
  $("setb").addEventListener("click", () => setEnd("b"));
  $("walk").addEventListener("click", walk);
  $("sample").addEventListener("click", drawSamples);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
}

start();
