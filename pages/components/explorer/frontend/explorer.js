// The latent explorer's browser half. ONNX Runtime Web runs the exported generator in this page, so the image is
// redrawn on every `input` event of a slider, while the hand moves, with no round trip to the server; Python hears
// the final z when the slider is let go (`change`). It speaks Streamlit's component protocol (v1) by postMessage.
//
// Python sends (args): `model`, the ONNX file's address (null until the export is made, which the server starts only
// once this page has said its runtime is ready, so it exports only for browsers that can run the result; meanwhile
// `asked` echoes this page's last question after it, so that each question gets a render to answer it), `inputs`,
// `shape` [C, H, W], the start code `z`, slider `names` with their `directions` in z and their `values`,
// `lo`/`hi`/`step`, `classes` and `label` for conditional models, `scale` (screen pixels per image pixel) and
// `identity`: when it changes (another model, seed or set of directions) the controls are rebuilt from args,
// otherwise args are an echo of what this page sent.
// This page answers {identity, runtime: "ready"} once (then {identity, runtime: "ready", asked} a second after each
// render without a model), {identity, values, label, z} on every release, or {identity, error} when WebAssembly, the
// runtime or the model cannot load.

const stats = (window.explorerStats = {
  state: "loading",  // loading | ready | error
  inputs: 0,         // slider input events
  frames: 0,         // redraws of the edited image
  frameTimes: [],    // performance.now() of each redraw
  runMs: [],         // time of each session.run
  firstFrameEpochMs: null,
  commits: 0,        // releases reported to Python
  error: null,
  z: null,           // the code and class of the last redraw
  label: null,
  model: null,       // the ONNX file drawn, once its first frame is on the canvas
});

let ort = null;
let session = null;
let sessionModel = null;
let args = null;
let identity = null;
let offsets = [];
let label = 0;
let reportedRuntime = false;
let asked = 0;

const $ = (id) => document.getElementById(id);

function send(type, data) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

function setValue(value) {
  send("streamlit:setComponentValue", { value: { identity, ...value }, dataType: "json" });
}

function fitHeight() {
  send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
}

function fail(error) {
  const why = error instanceof Error ? error.message : String(error);
  stats.state = "error";
  stats.error = why;
  $("status").textContent = `Could not run the generator in this browser: ${why}`;
  $("status").className = "error";
  $("explorer").hidden = true;
  fitHeight();
  setValue({ error: why });
}

async function loadRuntime() {
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  ort = await import("./vendor/ort.wasm.bundle.min.mjs");
  // Threads need SharedArrayBuffer, which only a cross-origin-isolated page has; Streamlit's is not one.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  // The binary comes from the app's own server, beside the module, never from a CDN.
  ort.env.wasm.wasmPaths = { wasm: new URL("vendor/ort-wasm-simd-threaded.wasm", location.href).href };
}

// genmodels.data.to_uint8 in float32 arithmetic: round((clamp(x, -1, 1) + 1) * 127.5), ties to even as torch rounds.
function toByte(x) {
  const v = Math.fround(Math.fround(Math.min(1, Math.max(-1, x)) + 1) * 127.5);
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 === 1 ? r - 1 : r;
}

function paint(canvas, data) {
  const [c, h, w] = args.shape;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = toByte(data[(c === 3 ? k : 0) * h * w + i]);
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

// z + sum_i offsets[i] * directions[i], in float32 and in the order the server's sliders add them, so that both
// halves of the page compute the same code from the same slider values.
function editedZ() {
  const z = Float32Array.from(args.z);
  const step = new Float32Array(z.length);
  offsets.forEach((value, i) => {
    const v = Math.fround(value);
    args.directions[i].forEach((d, j) => { step[j] = step[j] + Math.fround(v * d); });
  });
  return z.map((x, j) => x + step[j]);
}

// Runs of the one session never overlap: each waits for the one before.
let queue = Promise.resolve();

function run(z) {
  const result = queue.then(() => runNow(z));
  queue = result.catch(() => {});
  return result;
}

async function runNow(z) {
  const feeds = { z: new ort.Tensor("float32", z, [1, z.length]) };
  if (args.inputs.includes("labels")) feeds.labels = new ort.Tensor("int64", BigInt64Array.of(BigInt(label)), [1]);
  const t = performance.now();
  const out = await session.run(feeds);
  stats.runMs.push(performance.now() - t);
  return out.images.data;
}

// One inference at a time: input events that arrive meanwhile are folded into one more redraw with the newest values.
let pending = false;
let drawing = false;

let pumping = Promise.resolve();

// Ask for a redraw; the promise settles once the canvas shows the newest values.
function redraw() {
  pending = true;
  if (!drawing) pumping = pump();
  return pumping;
}

async function pump() {
  drawing = true;
  try {
    while (pending) {
      pending = false;
      const z = editedZ();
      paint($("edited"), await run(z));
      const now = performance.now();
      stats.frames += 1;
      stats.frameTimes.push(now);
      stats.z = Array.from(z);
      stats.label = label;
      if (stats.firstFrameEpochMs === null) stats.firstFrameEpochMs = performance.timeOrigin + now;
    }
  } finally {
    drawing = false;
  }
}

async function drawStart() {
  paint($("start"), await run(Float32Array.from(args.z)));
}

function commit() {
  stats.commits += 1;
  setValue({ values: offsets.slice(), label, z: Array.from(editedZ()) });
}

// The class picker and one slider per direction, showing `offsets` and `label`.
function buildControls() {
  const [, h, w] = args.shape;
  for (const canvas of [$("start"), $("edited")]) {
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = `${w * args.scale}px`;
    canvas.style.height = `${h * args.scale}px`;
  }
  const select = $("class");
  select.replaceChildren(...args.classes.map((name, i) => new Option(name, i, false, i === label)));
  $("class-row").hidden = args.classes.length === 0;
  const sliders = $("sliders");
  sliders.replaceChildren();
  args.names.forEach((name, i) => {
    const id = `slider-${i}`;
    const title = Object.assign(document.createElement("label"), { htmlFor: id, textContent: name });
    const input = Object.assign(document.createElement("input"), {
      type: "range", id, min: args.lo, max: args.hi, step: args.step, value: offsets[i],
    });
    const shown = Object.assign(document.createElement("span"), { className: "value" });
    const show = () => { shown.textContent = offsets[i].toFixed(2); };
    show();
    input.addEventListener("input", () => {
      stats.inputs += 1;
      offsets[i] = Number(input.value);
      show();
      redraw().catch(fail);
    });
    input.addEventListener("change", commit);
    const row = Object.assign(document.createElement("div"), { className: "row" });
    row.append(input, shown);
    sliders.append(title, row);
  });
  fitHeight();
}

async function render(newArgs) {
  args = newArgs;
  if (newArgs.identity === identity && session && sessionModel === newArgs.model) return;  // our own echo
  identity = newArgs.identity;
  try {
    if (!ort) await loadRuntime();
    if (!reportedRuntime) {
      reportedRuntime = true;
      setValue({ runtime: "ready" });
    }
    // Until this model's session is loaded, the controls of a model shown before are hidden: their session does not
    // run this model's codes.
    if (sessionModel !== newArgs.model) $("explorer").hidden = true;
    if (!newArgs.model) {
      // The server exports once it has heard that the runtime is ready, in the background; ask again each second.
      $("status").textContent = "Preparing the generator for this browser (once per checkpoint)…";
      fitHeight();
      setTimeout(() => { if (args === newArgs) setValue({ runtime: "ready", asked: ++asked }); }, 1000);
      return;
    }
    if (sessionModel !== newArgs.model) {
      $("status").textContent = "Loading the generator into your browser…";
      session = await ort.InferenceSession.create(newArgs.model, { executionProviders: ["wasm"] });
      sessionModel = newArgs.model;
    }
    if (args !== newArgs) return;  // newer args arrived while loading; their render draws
    offsets = newArgs.values.slice();
    label = newArgs.label;
    buildControls();
    $("status").textContent = "";
    $("explorer").hidden = false;
    await drawStart();
    await redraw();
    stats.state = "ready";
    stats.model = newArgs.model;
    fitHeight();
  } catch (error) {
    fail(error);
  }
}

$("class").addEventListener("change", (event) => {
  label = Number(event.target.value);
  drawStart().then(redraw).then(commit).catch(fail);
});

$("reset").addEventListener("click", () => {
  offsets = offsets.map(() => 0);
  buildControls();
  redraw().catch(fail);
  commit();
});

// The app's theme (font, colours), so the iframe reads as part of the page.
function applyTheme(theme) {
  if (!theme) return;
  const style = document.documentElement.style;
  if (theme.font) style.setProperty("--font", theme.font);
  if (theme.textColor) style.setProperty("--text", theme.textColor);
  if (theme.primaryColor) style.setProperty("--primary", theme.primaryColor);
}

window.addEventListener("message", (event) => {
  if (event.data && event.data.type === "streamlit:render") {
    applyTheme(event.data.theme);
    render(event.data.args);
  }
});
window.addEventListener("resize", fitHeight);
send("streamlit:componentReady", { apiVersion: 1 });
fitHeight();
