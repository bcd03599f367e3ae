// genmodels explore: the page. Plain JavaScript, no build step, nothing fetched but this server's /api.
// State: the runs the server loaded, the chosen run, and the current code (what "Decoded" shows).
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, code: null, point: null, own: null, a: null, b: null, compare: new Set(),
                view: null, hover: -1, pending: 0, label: null, output: null, dragging: false,
                plane: { now: [], path: [], samples: [], trail: [], own: null, every: [] } };

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
  state.plane = { now: [], path: [], samples: [], trail: [], own: null, every: [] };
  state.slice = codeSlice(run);
  const hasMap = !!(run.map || state.slice), vectors = run.kind === "vectors", plane = vectors && !!run.data.points;
  const what = vectors ? "test vectors" : "test images";
  $("mapbox").hidden = !hasMap;
  $("samplebox").hidden = !run.samples;
  $("ownbox").hidden = vectors;  // a vector run takes no image file: a vector typed in (or a click on the plane)
  $("vectorbox").hidden = !(vectors && run.encodes);
  $("vectorin").placeholder = vectors ? run.data.extent.map(([lo, hi]) => fmt((lo + hi) / 2)).join(", ") : "";
  $("plane").hidden = !plane;
  $("planelegend").hidden = !plane;
  $("runinfo").textContent = `${run.family}, codes of ${run.dim} dimensions, ` +
    (vectors ? `vectors of ${run.shape[0]} numbers` : `images ${run.shape[1]}×${run.shape[2]}`) +
    (run.classes ? `, conditional on ${run.classes.length} classes` : "") +
    (run.ema ? ", samples from the averaged (EMA) generator" : "");
  $("mapnote").textContent = state.slice ? sliceNote(run)
    : hasMap ? `${run.map.note} ${run.map.points.length} of the ${run.map.of} ${what}.` : "";
  $("vectornote").textContent = vectors ? vectorNote(run) : "";
  $("maphint").textContent = state.slice ? "Click anywhere to set those two numbers of the code; hold the button " +
    "and drag to walk." : `Hover a dot to see its ${what.slice(5, -1)}. Click anywhere to decode that point; a ` +
    `click on a dot takes that ${what.slice(5, -1)}'s code. Hold the button and drag to walk.`;
  $("walk").disabled = true;
  for (const id of ["aimg", "bimg", "path", "samples", "own", "decoded", "every"]) $(id).replaceChildren();
  buildClasses();
  buildCompare();
  buildSliders();
  if (hasMap) { fitView(); drawMap(); legend(); }
  if (plane) { planeLegend(); drawPlane(); }
  say(readyMessage(run, hasMap, vectors, plane));
  await setCode(run.centre.slice(), null, centreName(run));
}

function readyMessage(run, hasMap, vectors, plane) {
  const start = hasMap ? "Ready: click the map (or drag on it), move a slider" + (vectors ? "." : ", or drop an image.")
                       : "Ready: this model has no encoder, so there is no map of the codes; draw samples and move z.";
  if (!vectors) return start;
  if (!run.encodes) return `${start} This run is on vectors, so the image drop is hidden.`;
  return `${start} This run is on vectors, so the image drop is hidden; ` +
    (plane ? "click the data plane or type a vector to encode it instead." : "type a vector to encode it instead.");
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
    const answers = await Promise.all(runs.map((r) => api(runPath(r, "decode"),
      { targets: [{ code: state.code }], labels: labelsFor(r) })));
    if (ticket !== latest) return;  // a newer code was asked for meanwhile: show that one
    const outs = answers.map(outputsOf);
    const figures = outs.map((o, i) => figure(o[0], runs[i].name + classCaption(runs[i]), runs[i]));
    state.output = outs[0][0];
    if (state.origin && state.code === state.origin.code) {
      figures.unshift(figure(state.origin.output, `test ${state.run.kind === "vectors" ? "vector" : "image"} ` +
                                                  `${state.origin.index}`, state.run));
    }
    if (state.own && state.code === state.own.code) {
      figures.unshift(figure(state.own.input, typeof state.own.input === "string" ? "your image" : "your vector"));
    }
    $("decoded").replaceChildren(...figures);
    state.point = state.slice ? [state.code[state.slice.a], state.code[state.slice.b]]
      : answers[0].points ? answers[0].points[0] : null;
    if (mapShown()) drawMap();
    if (state.run.kind === "vectors" && state.run.data.points) {
      // Each run's decoded point in the plane, in its caption's colour (null: a run whose output is no point).
      state.plane.now = outs.map((o, i) => (runs[i].kind === "vectors" && o[0].length === 2 ? o[0] : null));
      figures.slice(-runs.length).forEach((f, i) => { if (state.plane.now[i]) f.style.color = pointColour(i); });
      if (state.dragging) state.plane.trail.push(outs[0][0]);
      drawPlane();
    }
    clearError();
    await everyClass(ticket);
  } catch (err) { failed(err); }
}

function clearError() {
  if ($("status").classList.contains("error")) say("Ready.");
}

// An answer's decoded outputs: PNG data URLs (images) or arrays of numbers (vectors, data units).
const outputsOf = (answer) => answer.images || answer.vectors;

// One output as an element: an image, or a vector's canvas (vectors.js) of the run that decoded it.
function view(output, alt, run, size) {
  if (typeof output !== "string") {
    return size === "thumb" || output.length <= 2 ? vectorCanvas(output, run, size === "thumb" ? 56 : 140)
                                                  : vectorCanvas(output, run, 280, 140);
  }
  const img = document.createElement("img");
  img.src = output;
  img.alt = alt;
  return img;
}

function figure(output, caption, run) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  // A 2-D vector is drawn in the data plane itself: its figure is its caption and numbers.
  const planar = typeof output !== "string" && output.length === 2 && (run || state.run).data.points;
  if (!planar) fig.append(view(output, caption, run || state.run, "figure"));
  fig.append(cap);
  if (typeof output !== "string" && output.length <= 12) {  // a short vector's numbers under it, in data units
    const numbers = document.createElement("div");
    numbers.className = "numbers";
    numbers.textContent = describeVector(output);
    fig.append(numbers);
  }
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

// -- interpolation between two codes --------------------------------------------------------------------------
async function walk() {
  const body = { a: { code: state.a.code }, b: { code: state.b.code }, label: labelFor(state.run),
                 steps: Math.max(2, Math.min(32, parseInt($("steps").value, 10) || 10)), mode: $("mode").value };
  try {
    const answer = await api(runPath(state.run, "interpolate"), body);
    $("path").replaceChildren(...outputsOf(answer).map((src, k) => thumb(src, `step ${k + 1}`,
      () => setCode(answer.codes[k], null, `step ${k + 1} of the walk`))));
    if (answer.vectors && state.run.data.points) { state.plane.path = answer.vectors; drawPlane(); }
    clearError();
  } catch (err) { failed(err); }
}

function centreName(run) {
  return run.encodes ? "the mean of the test codes" : "the prior's centre, z = 0";
}

function setEnd(which) {
  state[which] = { code: state.code.slice() };
  $(`${which}img`).replaceChildren(view(state.output, `${which.toUpperCase()}`, state.run, "thumb"));
  $("walk").disabled = !(state.a && state.b);
}

function thumb(src, alt, onclick) {
  const img = view(src, alt, state.run, "thumb");
  if (onclick) img.addEventListener("click", onclick);
  return img;
}

// -- sampling from the prior ----------------------------------------------------------------------------------
async function drawSamples() {
  const seed = Math.max(0, parseInt($("seed").value, 10) || 0);
  try {
    const answer = await api(runPath(state.run, "sample"), { seed, n: 16, label: labelFor(state.run) });
    $("samples").replaceChildren(...outputsOf(answer).map((src, k) => thumb(src, `sample ${k + 1}`,
      () => setCode(answer.codes[k], null, `sample ${k + 1} of seed ${seed}${classCaption(state.run)}`))));
    if (answer.vectors && state.run.data.points) { state.plane.samples = answer.vectors; drawPlane(); }
    clearError();
  } catch (err) { failed(err); }
}

// -- your own image: dropped or chosen, sent as it is; the server resizes it ----------------------------------
async function upload(file) {
  if (!file) return;
  try {
    const label = labelFor(state.run);
    const answer = await api(runPath(state.run, `upload?invert=${$("invert").value}` +
                                                (label === undefined ? "" : `&label=${label}`)), file, true);
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

// -- your own vector (a vector run whose model encodes): typed in, encoded, its reconstruction decoded ----------
async function ownVector(event) {
  event.preventDefault();
  const numbers = $("vectorin").value.split(/[\s,;]+/).filter((t) => t !== "").map(Number);
  const d = state.run.shape[0];
  if (numbers.length !== d || numbers.some((v) => !Number.isFinite(v))) {
    say(`Type ${d} numbers separated by commas or spaces (the data's columns, in its own units).`, true);
    return;
  }
  const answer = await api(runPath(state.run, "decode"), { targets: [{ vector: numbers }],
                                                          labels: labelsFor(state.run) }).catch(failed);
  if (!answer) return;
  state.own = { code: answer.codes[0], input: numbers };
  if (d === 2) state.plane.own = numbers;
  await setCode(answer.codes[0], null, "the code of your vector");
}

function wire() {
  $("vectorform").addEventListener("submit", ownVector);
  const map = $("map");
  map.addEventListener("mousemove", hover);
  map.addEventListener("mouseleave", () => { $("tip").hidden = true; state.hover = -1; });
  map.addEventListener("click", click);
  // Drag to walk: while the button is held, each point under the pointer is decoded (one request at a time), and
  // a vector run on 2-D data leaves the decoded points as a trail in the data plane.
  map.addEventListener("mousedown", () => { state.dragging = true; state.plane.trail = []; });
  map.addEventListener("mousemove", drag);
  window.addEventListener("mouseup", () => { state.dragging = false; });
  $("plane").addEventListener("click", clickPlane);
  $("klass").addEventListener("change", () => chooseClass(parseInt($("klass").value, 10)));
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
