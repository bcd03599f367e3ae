// genmodels explore: a conditional run's class (loaded before explore.js, which calls these). Every decode of such
// a run is under the class the selector names. The "same code, every class" row decodes the current code under
// each class: what stays the same is what the code holds (content), what changes is what the class sets (style).
"use strict";

// The class a request sends for `run`: the chosen one for the chosen run; for a compared conditional run the same
// index where it has it, else its own default; none for a run that is not conditional (it refuses a class).
function labelFor(run) {
  if (!run.classes) return undefined;
  if (run === state.run) return state.label;
  return state.label !== null && state.label < run.classes.length ? state.label : run.label;
}

function labelsFor(run) {
  const label = labelFor(run);
  return label === undefined ? undefined : [label];
}

function classCaption(run) {
  const label = labelFor(run);
  return label === undefined ? "" : ` (class ${run.classes[label]})`;
}

function buildClasses() {
  const run = state.run, select = $("klass");
  $("classpick").hidden = !run.classes;
  $("everybox").hidden = !run.classes;
  select.replaceChildren();
  state.label = run.classes ? run.label : null;
  if (!run.classes) return;
  run.classes.forEach((name, k) => {
    const option = document.createElement("option");
    option.value = String(k);
    option.textContent = name === String(k) ? name : `${k}: ${name}`;
    select.append(option);
  });
  select.value = String(run.label);
}

// A new class: the current code decoded under it, and the samples and walk on show drawn again under it.
async function chooseClass(label) {
  state.label = label;
  $("klass").value = String(label);
  await decodeCurrent();
  if ($("samples").children.length) await drawSamples();
  if ($("path").children.length) await walk();
}

async function everyClass(ticket) {
  const run = state.run;
  if (!run.classes) return;
  const labels = run.classes.map((_, k) => k).slice(0, 64);  // the server decodes at most 64 codes at once
  const answer = await api(runPath(run, "decode"), { targets: labels.map(() => ({ code: state.code })), labels })
    .catch(failed);
  if (!answer || ticket !== latest) return;
  const outs = outputsOf(answer);
  $("every").replaceChildren(...outs.map((output, k) => {
    const fig = figure(output, run.classes[k], run);
    fig.classList.toggle("chosen", k === state.label);
    fig.addEventListener("click", () => chooseClass(k));
    if (run.kind === "vectors" && run.data.points) fig.style.color = PALETTE[k % PALETTE.length];  // its dot's
    return fig;
  }));
  if (answer.vectors && run.data.points) { state.plane.every = outs; drawPlane(); }
}
