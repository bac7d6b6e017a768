// The studio page: image mode (upload / drag-and-drop / gallery, up to four styles with
// weights, alpha, colour preservation, full-resolution PNG download) and webcam mode (frames
// stylised live in this browser; nothing is sent to the server). All stylisation here runs in
// the browser with onnxruntime-web; only "Download" of an image larger than the in-browser
// limit asks the server (POST /api/stylize), and only in image mode.
import { adainInto, channelStats, contentColourStats, mixStats, planarToRgba, recolourStyle, rgbaToPlanar } from './adain.js';
import { loadRuntime, ModelRunner } from './engine.js';
import { createVideoMode, isVideoFile } from './video.js';

const MAX_STYLES = 4;
/** The webcam's default model where the server has it: the 3SE encoder to relu3_1, about half the FLOPs of cd16x-r41. */
const WEBCAM_MODEL = 'cd16x-r31';
/** Longest side stylised in the browser; larger contents are previewed at this size and downloaded from the server. */
const BROWSER_MAX_SIDE = 1024;

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);

const state = {
  rt: null,
  config: null,
  model: null,
  runner: null, // any-size sessions: image mode and style statistics
  content: null,
  styles: [], // { id, name, blob, bitmap, weight, planar, w, h, stats, pcStats }
  alpha: 1,
  preserveColor: false,
  renders: 0,
  nextId: 1,
};

// ---------- one onnxruntime call at a time (webcam and image mode share the wasm runtime) ----------
let lock = Promise.resolve();
function exclusive(fn) {
  const run = lock.then(fn, fn);
  lock = run.catch(() => {});
  return run;
}

// ---------- small helpers ----------
function setStatus(text) { $('#status').textContent = text; }
function showError(err) {
  const msg = err instanceof Error ? err.message : String(err);
  console.error(err);
  const el = $('#error');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { el.hidden = true; }, 8000);
}

function yieldToBrowser() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(0);
  });
}

async function decodeBlob(blob, name) {
  try {
    return await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name} is not an image this browser can read; use a PNG, JPEG or WebP file`);
  }
}

/** Planar RGB of a bitmap drawn at w x h. */
function bitmapToPlanar(bitmap, w, h) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  return rgbaToPlanar(ctx.getImageData(0, 0, w, h).data, w, h);
}

function drawPlanar(canvas, data, w, h) {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = new ImageData(planarToRgba(data, w, h), w, h);
  ctx.putImageData(img, 0, 0);
}

function stem(name) { return name.replace(/\.[^.]+$/, ''); }

// ---------- model ----------
async function selectModel(name) {
  setStatus(`Loading model ${name}…`);
  const runner = await exclusive(async () => {
    const r = await ModelRunner.create(state.rt, name);
    if (state.runner) await state.runner.release();
    return r;
  });
  state.model = name;
  state.runner = runner;
  if (state.content) state.content.feats = null;
  for (const s of state.styles) { s.planar = null; s.stats = null; s.pcStats = new Map(); }
  await webcam.reset();
  setStatus(`Model ${name} ready (${state.rt.backend}${state.rt.backend === 'wasm' ? `, ${state.rt.threads} thread${state.rt.threads > 1 ? 's' : ''}` : ''}).`);
  requestRender();
}

// ---------- a video as content: stylised on the server (web/video.js) ----------
const videoMode = createVideoMode({
  request: () => ({ styles: state.styles, alpha: state.alpha, preserveColor: state.preserveColor, model: state.model }),
  onActivate: () => { state.content = null; }, // the image pipeline has nothing to render now
  showError,
});

// ---------- content and styles ----------
async function setContent(blob, name) {
  videoMode.deactivate();
  const bitmap = await decodeBlob(blob, name);
  const w = bitmap.width, h = bitmap.height;
  const scale = Math.min(1, BROWSER_MAX_SIDE / Math.max(w, h));
  const workW = Math.max(1, Math.round(w * scale)), workH = Math.max(1, Math.round(h * scale));
  state.content = { name, blob, bitmap, w, h, workW, workH, planar: bitmapToPlanar(bitmap, workW, workH), feats: null, featStats: null, key: state.nextId++ };
  state.content.colour = contentColourStats(state.content.planar, workW * workH);
  if ($('#content-thumb').src.startsWith('blob:')) URL.revokeObjectURL($('#content-thumb').src);
  $('#content-thumb').src = URL.createObjectURL(blob);
  $('#content-thumb').hidden = false;
  $('#content-name').textContent = `${name} (${w}x${h})`;
  for (const s of state.styles) s.pcStats = new Map();
  requestRender();
}

async function addStyle(blob, name) {
  if (state.styles.length >= MAX_STYLES) throw new Error(`at most ${MAX_STYLES} styles; remove one first`);
  const bitmap = await decodeBlob(blob, name);
  state.styles.push({ id: state.nextId++, name, blob, bitmap, url: URL.createObjectURL(blob), weight: 1, planar: null, stats: null, pcStats: new Map() });
  renderStyleList();
  styleChanged();
}

function removeStyle(id) {
  for (const s of state.styles) if (s.id === id) URL.revokeObjectURL(s.url);
  state.styles = state.styles.filter((s) => s.id !== id);
  renderStyleList();
  styleChanged();
}

function renderStyleList() {
  const list = $('#style-list');
  list.replaceChildren();
  for (const s of state.styles) {
    const li = document.createElement('li');
    li.className = 'style-item';
    const img = document.createElement('img');
    img.src = s.url;
    img.alt = s.name;
    const label = document.createElement('label');
    label.textContent = s.name;
    const weight = document.createElement('input');
    Object.assign(weight, { type: 'range', min: '0', max: '1', step: '0.05', value: String(s.weight), className: 'style-weight', title: 'mixing weight' });
    weight.setAttribute('aria-label', `weight of ${s.name}`);
    const out = document.createElement('output');
    out.textContent = s.weight.toFixed(2);
    weight.addEventListener('input', () => { s.weight = Number(weight.value); out.textContent = s.weight.toFixed(2); styleChanged(); });
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'remove';
    remove.textContent = '×';
    remove.title = `remove ${s.name}`;
    remove.addEventListener('click', () => removeStyle(s.id));
    label.append(weight, out);
    li.append(img, label, remove);
    list.append(li);
  }
  $('#style-drop').hidden = state.styles.length >= MAX_STYLES;
  $('#style-count').textContent = `${state.styles.length}/${MAX_STYLES}`;
}

/** The style scaled so its shorter side is the style size, sides a multiple of the model's factor (as on the server). */
function stylePlanar(s, f = state.runner.factor) {
  if (!s.planar || s.planarFactor !== f) {
    const size = state.config.styleSize;
    const scale = size / Math.min(s.bitmap.width, s.bitmap.height);
    const w = Math.max(2 * f, Math.round((s.bitmap.width * scale) / f) * f), h = Math.max(2 * f, Math.round((s.bitmap.height * scale) / f) * f);
    s.planar = bitmapToPlanar(s.bitmap, w, h);
    s.w = w; s.h = h; s.planarFactor = f;
  }
  return s.planar;
}

/**
 * Style statistics at the cut layer, computed once per style (and, with colour preservation,
 * once per style and content colours). `runner` is the image mode's unless the webcam runs
 * another model; that model's statistics are kept apart, by model name.
 */
async function styleStats(s, colour, runner = state.runner) {
  const key = colour ? colour.key : null;
  const own = runner === state.runner;
  const otherKey = `${runner.name} ${key}`;
  if (own && !colour && s.stats) return s.stats;
  if (own && colour && s.pcStats.has(key)) return s.pcStats.get(key);
  if (!own && s.otherStats?.has(otherKey)) return s.otherStats.get(otherKey);
  const data = stylePlanar(s, runner.factor);
  const w = s.w, h = s.h; // another model's factor may resize s.planar before the lock lets this run
  const input = colour ? recolourStyle(data, w * h, colour.stats) : data;
  const feats = await exclusive(() => runner.encode(input, w, h));
  const stats = channelStats(feats.data, feats.c, feats.h * feats.w);
  if (!own) (s.otherStats ??= new Map()).set(otherKey, stats);
  else if (colour) s.pcStats.set(key, stats); else s.stats = stats;
  return stats;
}

async function mixedStyleStats(colour, runner = state.runner) {
  const stats = [];
  for (const s of state.styles) stats.push(await styleStats(s, colour, runner));
  return mixStats(stats, state.styles.map((s) => s.weight));
}

function styleChanged() {
  webcam.styleChanged();
  requestRender();
}

// ---------- image mode rendering ----------
let rendering = false, dirty = false;
function requestRender() {
  dirty = true;
  if (!rendering) void renderLoop();
}

async function renderLoop() {
  rendering = true;
  try {
    while (dirty) {
      dirty = false;
      if (!state.runner || !state.content || state.styles.length === 0 || webcam.running) break;
      try {
        await renderOnce();
      } catch (err) {
        showError(err);
      }
    }
  } finally {
    rendering = false;
  }
}

async function renderOnce() {
  const runner = state.runner;
  try {
    await renderWith(runner);
  } catch (err) {
    if (state.runner === runner) throw err; // otherwise the model changed meanwhile; the loop renders again
  }
}

async function renderWith(runner) {
  const c = state.content;
  const t0 = performance.now();
  $('#result').dataset.state = 'busy';
  if (!c.feats) {
    setStatus('Encoding the content…');
    c.feats = await exclusive(() => runner.encodeAnySize(c.planar, c.workW, c.workH));
    c.featStats = channelStats(c.feats.data, c.feats.c, c.feats.h * c.feats.w);
  }
  if (state.styles.some((s) => !(state.preserveColor ? s.pcStats.has(c.key) : s.stats))) setStatus('Encoding the styles…');
  const mixed = await mixedStyleStats(state.preserveColor ? { key: c.key, stats: c.colour } : null);
  const f = c.feats;
  const target = adainInto(new Float32Array(f.data.length), f.data, f.c, f.h * f.w, mixed, state.alpha, c.featStats);
  setStatus('Decoding…');
  const out = await exclusive(() => runner.decodeTo({ ...f, data: target }, c.workW, c.workH));
  if (state.content !== c || state.runner !== runner) return; // replaced meanwhile; the loop renders again
  const canvas = $('#result');
  drawPlanar(canvas, out.data, out.w, out.h);
  canvas.hidden = false;
  $('#placeholder').hidden = true;
  state.renders++;
  canvas.dataset.renders = String(state.renders);
  canvas.dataset.state = 'ready';
  canvas.dataset.alpha = String(state.alpha);
  canvas.dataset.model = runner.name;
  const full = c.workW === c.w && c.workH === c.h;
  setStatus(`${c.w}x${c.h}${full ? '' : ` (preview ${c.workW}x${c.workH})`} stylised in ${Math.round(performance.now() - t0)} ms in this browser.`);
  $('#download').disabled = false;
}

// ---------- download ----------
function saveBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function download() {
  const c = state.content;
  if (!c) return;
  const name = `${stem(c.name)}_stylized.png`;
  if (c.workW === c.w && c.workH === c.h) {
    // the browser's result is already full size: wait for the render in progress, then save it
    while (rendering || dirty) await new Promise((r) => setTimeout(r, 50));
    const blob = await new Promise((resolve) => $('#result').toBlob(resolve, 'image/png'));
    saveBlob(blob, name);
    return;
  }
  // larger than the browser's limit: the server (this same machine) stylises the originals
  setStatus(`Stylising ${c.w}x${c.h} at full resolution on the server…`);
  const fd = new FormData();
  fd.append('content', c.blob, c.name);
  for (const s of state.styles) fd.append('style', s.blob, s.name);
  fd.append('alpha', String(state.alpha));
  fd.append('style_weights', state.styles.map((s) => s.weight).join(','));
  fd.append('preserve_color', String(state.preserveColor));
  fd.append('model', state.model);
  const r = await fetch('/api/stylize', { method: 'POST', body: fd });
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).error; } catch { /* not JSON */ }
    throw new Error(`the server could not stylise the image: ${msg}`);
  }
  saveBlob(await r.blob(), name);
  setStatus(`Downloaded ${name} (${r.headers.get('X-Image-Size') ?? `${c.w}x${c.h}`}).`);
}

// ---------- webcam mode ----------
const webcam = {
  running: false,
  stream: null,
  size: 256,
  model: null, // the webcam's own model (#webcam-model); null: the image mode's
  runner: null, // sessions fixed to size x size
  runnerSize: 0,
  runnerModel: null,
  statsRunner: null, // any-size sessions of the webcam model for style statistics, when the image mode runs another
  keepFrame: false, // tests: keep a copy of the last frame's input and output in `kept`
  kept: null,
  mixed: null, // style statistics for the frames: computed once per style change
  statsDirty: true,
  frames: 0,
  times: [],
  stage: { capture: 0, encode: 0, adain: 0, decode: 0, draw: 0, n: 0 },
  loop: null,
  buffers: null,

  async start() {
    if (this.running) return;
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera access here (webcam mode needs http://localhost or HTTPS)');
    if (state.styles.length === 0) await addDefaultStyle();
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    const video = $('#webcam-video');
    video.srcObject = this.stream;
    await video.play();
    this.running = true;
    this.latestFrame = undefined;
    this.seenFrame = undefined;
    this.watchFrames();
    this.frames = 0;
    this.times = [];
    this.stage = { capture: 0, encode: 0, adain: 0, decode: 0, draw: 0, n: 0 };
    $('#webcam-toggle').textContent = 'Stop camera';
    $('#webcam-output').dataset.frames = '0';
    this.loop = this.run();
  },

  async stop() {
    this.running = false;
    await this.loop;
    this.loop = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    $('#webcam-toggle').textContent = 'Start camera';
    requestRender();
  },

  async reset() {
    this.statsDirty = true;
    if (this.running) { this.resetPending = true; return; } // the loop releases the sessions between frames
    await this.releaseRunner();
  },

  async releaseRunner() {
    if (this.runner) {
      const r = this.runner;
      this.runner = null;
      this.runnerSize = 0;
      await exclusive(() => r.release());
    }
  },

  async releaseStatsRunner() {
    if (this.statsRunner) {
      const r = this.statsRunner;
      this.statsRunner = null;
      await exclusive(() => r.release());
    }
  },

  styleChanged() { this.statsDirty = true; },

  /** The model the frames run through: the webcam's choice, else the image mode's. */
  modelName() { return this.model ?? state.model; },

  /** Sessions that encode the styles for the webcam model: the image mode's when the two models agree. */
  async styleRunner() {
    if (this.runnerModel === state.model) return state.runner;
    if (this.statsRunner?.name !== this.runnerModel) {
      await this.releaseStatsRunner();
      const name = this.runnerModel;
      this.statsRunner = await exclusive(() => ModelRunner.create(state.rt, name));
    }
    return this.statsRunner;
  },

  async ensureRunner() {
    const model = this.modelName();
    if (this.runner && this.runnerSize === this.size && this.runnerModel === model) return;
    const old = this.runner;
    this.runner = null;
    if (old) await exclusive(() => old.release());
    if (this.runnerModel !== model) this.statsDirty = true; // another cut layer: other statistics
    setStatus(`Preparing ${model} ${this.size}x${this.size} sessions…`);
    const fixed = params.get('dynamic') === null; // ?dynamic: any-size sessions, for comparison
    this.runner = await exclusive(() => ModelRunner.create(state.rt, model, fixed ? { size: this.size } : {}));
    this.runnerModel = model;
    this.runnerSize = this.size;
    const n = this.size * this.size;
    const rgba = new Uint8ClampedArray(4 * n);
    this.buffers = { planar: new Float32Array(3 * n), target: null, rgba, image: new ImageData(rgba, this.size, this.size) };
    $('#webcam-output').width = this.size;
    $('#webcam-output').height = this.size;
  },

  /** Resolves when the camera has a frame this loop has not stylised yet (so the FPS counts real frames). */
  async newFrame() {
    const video = $('#webcam-video');
    if (!('requestVideoFrameCallback' in video)) return;
    if (this.seenFrame !== undefined && this.seenFrame === this.latestFrame) {
      // at most 100 ms: a browser that does not composite the hidden video may not call back
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 100);
        video.requestVideoFrameCallback((_now, meta) => { this.latestFrame = meta.presentedFrames; clearTimeout(timer); resolve(); });
      });
    }
    this.seenFrame = this.latestFrame;
  },

  watchFrames() {
    const video = $('#webcam-video');
    if (!('requestVideoFrameCallback' in video)) return;
    const onFrame = (_now, meta) => {
      this.latestFrame = meta.presentedFrames;
      if (this.running) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  },

  /** Style statistics for the frames, once per style change (and per webcam model). */
  async ensureStats(planar) {
    if (!this.statsDirty && this.mixed) return;
    this.statsDirty = false;
    const n = this.size * this.size;
    // colour preservation uses this frame's colours until the style changes again
    const colour = state.preserveColor ? { key: `cam${state.nextId++}`, stats: contentColourStats(planar, n) } : null;
    this.mixed = await mixedStyleStats(colour, await this.styleRunner());
  },

  /** One size x size planar frame through the webcam sessions (ensureRunner and ensureStats first). */
  async stylizeFrame(planar) {
    const t1 = performance.now();
    const f = await exclusive(() => this.runner.encode(planar, this.size, this.size));
    const t2 = performance.now();
    if (!this.buffers.target || this.buffers.target.length !== f.data.length) this.buffers.target = new Float32Array(f.data.length);
    adainInto(this.buffers.target, f.data, f.c, f.h * f.w, this.mixed, state.alpha);
    const t3 = performance.now();
    const img = await exclusive(() => this.runner.decode({ ...f, data: this.buffers.target }));
    return { img, t1, t2, t3, t4: performance.now() };
  },

  capture(ctx) {
    const video = $('#webcam-video');
    const vw = video.videoWidth, vh = video.videoHeight, side = Math.min(vw, vh);
    ctx.drawImage(video, (vw - side) / 2, (vh - side) / 2, side, side, 0, 0, this.size, this.size);
    return rgbaToPlanar(ctx.getImageData(0, 0, this.size, this.size).data, this.size, this.size, this.buffers.planar);
  },

  async run() {
    const capture = new OffscreenCanvas(1, 1);
    const cctx = capture.getContext('2d', { willReadFrequently: true });
    const out = $('#webcam-output');
    const octx = out.getContext('2d');
    try {
      while (this.running) {
        if (this.resetPending) { this.resetPending = false; await this.releaseRunner(); }
        await this.ensureRunner();
        if (capture.width !== this.size) { capture.width = this.size; capture.height = this.size; }
        await this.newFrame();
        const t0 = performance.now();
        const planar = this.capture(cctx);
        await this.ensureStats(planar);
        const t1 = performance.now();
        const { img, t2, t3, t4 } = await this.stylizeFrame(planar);
        if (!this.running) break;
        planarToRgba(img.data, img.w, img.h, this.buffers.rgba);
        octx.putImageData(this.buffers.image, 0, 0);
        const t5 = performance.now();
        if (this.keepFrame) this.kept = { size: this.size, model: this.runnerModel, input: planar.slice(), output: img.data.slice() };
        const st = this.stage;
        st.capture += t1 - t0; st.encode += t2 - t1; st.adain += t3 - t2; st.decode += t4 - t3; st.draw += t5 - t4; st.n++;
        this.frames++;
        this.times.push(t5);
        while (this.times.length > 2 && t5 - this.times[0] > 2000) this.times.shift();
        const fps = this.times.length > 1 ? ((this.times.length - 1) * 1000) / (t5 - this.times[0]) : 1000 / (t5 - t0);
        const el = $('#fps');
        el.textContent = `${fps.toFixed(1)} FPS`;
        el.dataset.fps = fps.toFixed(2);
        out.dataset.frames = String(this.frames);
        await yieldToBrowser();
      }
    } catch (err) {
      this.running = false;
      showError(err);
      this.stream?.getTracks().forEach((t) => t.stop());
      $('#webcam-toggle').textContent = 'Start camera';
    }
  },
};

async function addDefaultStyle() {
  const item = gallery.find((g) => g.role === 'style') ?? gallery[0];
  if (!item) throw new Error('choose a style image first');
  const blob = await (await fetch(item.url)).blob();
  await addStyle(blob, `${item.name}.jpg`);
}

/**
 * Runs the webcam loop at `size` and measures `frames` frames after `warmup`: for benchmarks
 * (scripts/bench-web.ts). Returns fps, ms per frame and the per-stage split.
 */
async function benchmarkWebcam({ size = 256, frames = 30, warmup = 3, model } = {}) {
  switchMode('webcam');
  if (webcam.size !== size) {
    webcam.size = size;
    $('#webcam-size').value = String(size);
  }
  if (model !== undefined && model !== webcam.modelName()) {
    webcam.model = model;
    $('#webcam-model').value = model;
  }
  if (!webcam.running) await webcam.start();
  const until = async (n) => { while (webcam.frames < n) { if (!webcam.running) throw new Error('the webcam loop stopped'); await new Promise((r) => setTimeout(r, 20)); } };
  await until(webcam.frames + warmup);
  const startFrames = webcam.frames;
  webcam.stage = { capture: 0, encode: 0, adain: 0, decode: 0, draw: 0, n: 0 };
  const t0 = performance.now();
  await until(startFrames + frames);
  const ms = performance.now() - t0;
  const st = webcam.stage, k = Math.max(st.n, 1);
  const counted = webcam.frames - startFrames;
  return {
    size, frames: counted, fps: (counted * 1000) / ms, msPerFrame: ms / counted,
    stagesMs: { capture: st.capture / k, encode: st.encode / k, adain: st.adain / k, decode: st.decode / k, draw: st.draw / k },
    backend: state.rt.backend, threads: state.rt.threads, isolated: state.rt.isolated, fixedSessions: params.get('dynamic') === null,
    model: webcam.runnerModel,
  };
}

/**
 * One webcam frame (planar RGB floats, size x size) through the webcam's pipeline, with the
 * camera stopped: for tests that feed two execution providers the same frame.
 */
async function stylizeWebcamFrame(input, size) {
  if (webcam.running) throw new Error('stop the camera first');
  webcam.size = size;
  await webcam.ensureRunner();
  const planar = Float32Array.from(input);
  await webcam.ensureStats(planar);
  const { img } = await webcam.stylizeFrame(planar);
  return { model: webcam.runnerModel, w: img.w, h: img.h, output: Array.from(img.data) };
}

// ---------- gallery ----------
let gallery = [];
async function loadGallery() {
  gallery = (await (await fetch('/api/gallery')).json()).images;
  const box = $('#gallery');
  box.replaceChildren();
  for (const g of gallery) {
    const fig = document.createElement('figure');
    fig.className = 'gallery-item';
    fig.dataset.name = g.name;
    const img = document.createElement('img');
    img.src = g.url;
    img.alt = g.name;
    img.loading = 'lazy';
    const bar = document.createElement('figcaption');
    const asContent = document.createElement('button');
    asContent.type = 'button';
    asContent.textContent = 'Content';
    asContent.className = 'use-content';
    asContent.addEventListener('click', () => void useGallery(g, 'content').catch(showError));
    const asStyle = document.createElement('button');
    asStyle.type = 'button';
    asStyle.textContent = '+ Style';
    asStyle.className = 'use-style';
    asStyle.addEventListener('click', () => void useGallery(g, 'style').catch(showError));
    bar.append(asContent, asStyle);
    fig.append(img, bar);
    box.append(fig);
  }
}

async function useGallery(g, role) {
  const blob = await (await fetch(g.url)).blob();
  const name = g.url.split('/').pop();
  if (role === 'content') await setContent(blob, decodeURIComponent(name));
  else await addStyle(blob, decodeURIComponent(name));
}

// ---------- wiring ----------
function switchMode(mode) {
  const image = mode === 'image';
  $('#tab-image').setAttribute('aria-selected', String(image));
  $('#tab-webcam').setAttribute('aria-selected', String(!image));
  $('#image-view').hidden = !image;
  $('#webcam-view').hidden = image;
  document.body.dataset.mode = mode;
  if (image && webcam.running) void webcam.stop();
}

function wireDrop(zone, input, onFiles) {
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    void onFiles(files).catch(showError);
  });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    void onFiles([...(e.dataTransfer?.files ?? [])]).catch(showError);
  });
}

async function main() {
  const prefer = params.get('ep') ?? params.get('backend') ?? 'auto'; // ?backend: the older name
  const threads = params.get('threads') ? Number(params.get('threads')) : undefined;
  state.config = await (await fetch('/api/config')).json();
  state.rt = await loadRuntime({ prefer, threads });
  const rtText = state.rt.backend === 'webgpu' ? 'WebGPU' : `wasm SIMD · ${state.rt.threads} thread${state.rt.threads > 1 ? 's' : ''}`;
  $('#backend').textContent = rtText + (state.rt.isolated ? '' : ' (not cross-origin isolated)');
  $('#backend').dataset.backend = state.rt.backend;

  const models = await (await fetch('/api/models')).json();
  const select = $('#model');
  for (const m of models.models) {
    const opt = document.createElement('option');
    opt.value = m.name;
    opt.textContent = m.available ? m.name : `${m.name} (not installed)`;
    opt.disabled = !m.available;
    opt.title = m.description;
    select.append(opt);
  }
  const wanted = params.get('model') ?? models.default;
  select.value = wanted;
  select.addEventListener('change', () => void selectModel(select.value).catch(showError));

  // the webcam's model: the real-time one where it is installed, else the image mode's
  const camSelect = $('#webcam-model');
  const same = document.createElement('option');
  same.value = '';
  same.textContent = 'as in image mode';
  camSelect.append(same, ...[...select.options].map((o) => o.cloneNode(true)));
  const realtime = models.models.find((m) => m.name === WEBCAM_MODEL && m.available);
  camSelect.value = params.get('webcam_model') ?? (realtime ? WEBCAM_MODEL : '');
  webcam.model = camSelect.value || null;
  camSelect.addEventListener('change', () => { webcam.model = camSelect.value || null; webcam.times = []; });

  wireDrop($('#content-drop'), $('#content-file'), async (files) => {
    if (files[0]) await (isVideoFile(files[0]) ? videoMode.setContent(files[0]) : setContent(files[0], files[0].name));
  });
  wireDrop($('#style-drop'), $('#style-file'), async (files) => {
    for (const f of files.slice(0, MAX_STYLES - state.styles.length)) await addStyle(f, f.name);
  });
  $('#alpha').addEventListener('input', () => {
    state.alpha = Number($('#alpha').value);
    $('#alpha-value').textContent = state.alpha.toFixed(2);
    requestRender();
  });
  $('#preserve-color').addEventListener('change', () => {
    state.preserveColor = $('#preserve-color').checked;
    styleChanged();
  });
  $('#download').addEventListener('click', () => void download().catch(showError));
  $('#tab-image').addEventListener('click', () => switchMode('image'));
  $('#tab-webcam').addEventListener('click', () => switchMode('webcam'));
  $('#webcam-toggle').addEventListener('click', () => void (webcam.running ? webcam.stop() : webcam.start()).catch(showError));
  $('#webcam-size').addEventListener('change', () => { webcam.size = Number($('#webcam-size').value); webcam.times = []; });

  await loadGallery();
  await selectModel(wanted);
  document.body.dataset.ready = 'true';
}

window.studio = { state, webcam, benchmarkWebcam, stylizeWebcamFrame, setContent, addStyle, switchMode };
window.studio.video = videoMode;
window.studio.ready = main().catch((err) => { showError(err); document.body.dataset.ready = 'error'; throw err; });
