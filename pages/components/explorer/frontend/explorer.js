// The latent explorer's browser half. ONNX Runtime Web runs the exported generator in this page, so the image is
// redrawn on every `input` event of a slider, while the hand moves, with no round trip to the server; Python hears
// the final z when the slider is let go (`change`). It speaks Streamlit's component protocol (v1) by postMessage.
//
// Python sends (args): `model`, the ONNX file's address (null until the export is made, which the server starts only
// once this page has said its runtime is ready, so it exports only for browsers that can run the result; meanwhile
// `asked` echoes this page's last question after it, so that each question gets a render to answer it), `show`
// (false while the server's sliders and image stand in: this page loads the model out of sight and says so; true
// once Python has heard that, and this page takes over), `inputs`,
// `shape` [C, H, W], the start code `z`, slider `names` with their `directions` in z and their `values`,
// `lo`/`hi`/`step`, `classes` and `label` for conditional models, `scale` (screen pixels per image pixel) and
// `identity`: when it changes (another model, seed or set of directions) the controls are rebuilt from args,
// otherwise args are an echo of what this page sent.
// This page answers {identity, runtime: "ready"} once (then {identity, runtime: "ready", asked} a second after each
// render without a model), {identity, loaded: model} once a model's session is ready, {identity, values, label, z}
// on every release, or {identity, error} when WebAssembly, the runtime or the model cannot load.

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
let shownModel = null;  // the model whose controls are on show (null while the server's sliders stand in)
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

// While the server's sliders stand in, the runtime waits for the page to settle: this frame shares the page's thread,
// and parsing the runtime and compiling its WebAssembly while the page draws delayed the first usable frame by
// seconds on a busy two-core machine.
async function pageSettled() {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await new Promise((resolve) => requestIdleCallback(resolve, { timeout: 2000 }));
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
  const rebuild = newArgs.identity !== identity;
  identity = newArgs.identity;
  try {
    if (!ort && !newArgs.show) await pageSettled();
    if (!ort) await loadRuntime();
    if (!reportedRuntime) {
      reportedRuntime = true;
      setValue({ runtime: "ready" });
    }
    // Until this model's session is loaded and Python has handed over, the controls of a model shown before are
    // hidden: their session does not run this model's codes.
    if (sessionModel !== newArgs.model || !newArgs.show) {
      $("explorer").hidden = true;
      shownModel = null;
    }
    if (!newArgs.model) {
      // The server exports once it has heard that the runtime is ready, in the background; ask again each second.
      $("status").textContent = WAITING;
      fitHeight();
      setTimeout(() => { if (args === newArgs) setValue({ runtime: "ready", asked: ++asked }); }, 1000);
      return;
    }
    if (sessionModel !== newArgs.model) {
      $("status").textContent = newArgs.show ? "Loading the generator into your browser…" : WAITING;
      fitHeight();
      session = await ort.InferenceSession.create(newArgs.model, { executionProviders: ["wasm"] });
      sessionModel = newArgs.model;
      setValue({ loaded: sessionModel });  // Python hands over to this page on its next render
    }
    if (args !== newArgs || !newArgs.show) return;  // newer args arrived while loading; or not handed over yet
    if (!rebuild && shownModel === newArgs.model) return;  // our own echo
    offsets = newArgs.values.slice();
    label = newArgs.label;
    buildControls();
    $("status").textContent = "";
    $("explorer").hidden = false;
    await drawStart();
    await redraw();
    stats.state = "ready";
    stats.model = newArgs.model;
    shownModel = newArgs.model;
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

const WAITING = "The in-browser redraw is loading; until it is ready, the server draws after each release.";

// The app's own @font-face rules, from its stylesheets on the same server (their relative addresses resolved against
// each sheet), so that the theme's font below is the page's font and not a fallback.
function borrowFonts() {
  const rules = [];
  try {
    for (const sheet of window.parent.document.styleSheets) {
      let list;
      try { list = sheet.cssRules; } catch { continue; }  // a sheet from elsewhere: none here, but never a failure
      const base = sheet.href || window.parent.document.baseURI;
      for (const rule of list) {
        if (rule instanceof window.parent.CSSFontFaceRule) {
          rules.push(rule.cssText.replace(/url\("?([^")]+)"?\)/g, (_, url) => `url("${new URL(url, base).href}")`));
        }
      }
    }
  } catch {
    return;  // a parent page of another origin: the fallback fonts stay
  }
  document.head.append(Object.assign(document.createElement("style"), { textContent: rules.join("\n") }));
}

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
borrowFonts();
send("streamlit:componentReady", { apiVersion: 1 });
fitHeight();
