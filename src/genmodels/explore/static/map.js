// genmodels explore: the latent map (loaded before explore.js, which calls these): a canvas scatter of the test
// codes; hover a dot for its test image (or vector), click to decode a point, drag to walk.
"use strict";

// A vector run whose model does not encode (a GAN) has no test codes to map. Its map is a slice of the code space
// instead: through the current code, along the dimensions of the first two sliders, over their range, with the
// prior's 1, 2 and 3 sigma circles where the prior is N(0, I). A click sets those two numbers of the code.
function codeSlice(run) {
  return run.map || run.kind !== "vectors" || run.dim < 2 ? null : { a: run.sliders[0], b: run.sliders[1] };
}

const mapShown = () => !!(state.run.map || state.slice);
const mapPoints = () => (state.run.map ? state.run.map.points : []);

function sliceNote(run) {
  const { a, b } = state.slice;
  return `This model does not encode, so there are no test codes to map: the map is the slice of its ${run.dim}-d ` +
    `code through the current code along z[${a}] (across) and z[${b}] (up). A click sets those two numbers.`;
}

function slicePoint(point) {  // the current code with the slice's two numbers set to a point of the map
  const code = state.code.slice();
  [code[state.slice.a], code[state.slice.b]] = point;
  return code;
}

// -- the latent map: a canvas scatter, hover for the image, click to decode ----------------------------------
function fitView() {
  if (state.slice) {
    const [[x0, x1], [y0, y1]] = [state.run.ranges[state.slice.a], state.run.ranges[state.slice.b]];
    state.view = { x0, x1, y0, y1 };
    return;
  }
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
  const c = $("map"), g = c.getContext("2d"), pts = mapPoints();
  g.clearRect(0, 0, c.width, c.height);
  if (state.slice && state.view.x1 >= 3) priorCircles(g);
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

function priorCircles(g) {
  const [cx, cy] = toCanvas([0, 0]);
  g.strokeStyle = "#b0bec5";
  g.lineWidth = 1;
  for (const r of [1, 2, 3]) {
    const [rx] = toCanvas([r, 0]);
    g.beginPath(); g.arc(cx, cy, rx - cx, 0, 2 * Math.PI); g.stroke();
  }
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
  if (!map || !map.labels) return;
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
  const pts = mapPoints();
  for (let i = 0; i < pts.length; i++) {
    const [x, y] = toCanvas(pts[i]);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  return best;
}

const images = new Map();  // test image index -> data URL (or a test vector's numbers), fetched once per run
async function testImage(index) {
  const key = `${state.run.key}/${index}`;
  if (!images.has(key)) {
    const answer = await api(runPath(state.run, `images/${index}`));
    images.set(key, answer.image || answer.vector);
  }
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
    if (state.hover !== i) return;
    const vector = typeof src !== "string";
    $("tipimg").hidden = vector;
    if (vector) $("tipvec").replaceChildren(vectorCanvas(src, state.run, 84)); else $("tipimg").src = src;
    $("tipvec").hidden = !vector;
    tip.hidden = false;
  } catch (err) { failed(err); }
}

async function click(event) {
  const [px, py] = canvasXY(event);
  const i = nearest(px, py);
  if (i >= 0) {
    const answer = await api(runPath(state.run, "decode"), { targets: [{ index: i }] }).catch(failed);
    if (!answer) return;
    state.origin = { index: i, code: answer.codes[0], output: await testImage(i).catch(failed) };
    await setCode(state.origin.code, state.origin, `the code of test ${state.run.kind === "vectors" ? "vector" :
                                                                        "image"} ${i}`);
  } else if (state.slice) {
    const point = fromCanvas(px, py);
    await setCode(slicePoint(point), null, `z[${state.slice.a}] = ${point[0].toFixed(2)} and z[${state.slice.b}] = ` +
                                           `${point[1].toFixed(2)} in the slice`);
  } else {
    const point = fromCanvas(px, py);
    const answer = await api(runPath(state.run, "decode"), { targets: [{ point }] }).catch(failed);
    if (!answer) return;
    await setCode(answer.codes[0], null, `the map point (${point[0].toFixed(2)}, ${point[1].toFixed(2)})`);
  }
}

async function drag(event) {
  if (!state.dragging || !(event.buttons & 1) || state.pending) return;
  const point = fromCanvas(...canvasXY(event));
  if (state.slice) {
    await setCode(slicePoint(point), null, `z[${state.slice.a}], z[${state.slice.b}] dragged through the slice`);
    return;
  }
  const answer = await api(runPath(state.run, "decode"), { targets: [{ point }] }).catch(failed);
  if (answer && state.dragging) {
    await setCode(answer.codes[0], null, `the map point (${point[0].toFixed(2)}, ${point[1].toFixed(2)}), dragged`);
  }
}

