// onnxruntime-web in the page: picks WebGPU where the browser has an adapter, else wasm with
// SIMD and (when the page is cross-origin isolated) threads; runs the encoder and decoder
// that the server built for a model.
import { cropPlanar, padPlanar } from './adain.js';

/**
 * Loads onnxruntime-web. `prefer`: 'auto' (WebGPU if an adapter is found), 'webgpu' or 'wasm';
 * 'webgpu' without an adapter falls back to wasm (`requested` keeps what was asked for).
 * Returns { ort, backend, executionProviders, threads, isolated, requested }.
 */
export async function loadRuntime({ prefer = 'auto', threads } = {}) {
  if (!['auto', 'webgpu', 'wasm'].includes(prefer)) throw new Error(`unknown execution provider "${prefer}"; use ?ep=webgpu, ?ep=wasm or no ?ep`);
  let webgpu = false;
  if (prefer !== 'wasm' && 'gpu' in navigator) {
    try {
      webgpu = !!(await navigator.gpu.requestAdapter());
    } catch {
      webgpu = false;
    }
  }
  // The WebGPU build also contains the wasm CPU backend; the plain wasm build is smaller.
  const ort = await import(webgpu ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = '/ort/';
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = navigator.hardwareConcurrency || 1;
  ort.env.wasm.numThreads = isolated ? Math.max(1, Math.min(threads ?? cores, 16)) : 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return {
    ort,
    backend: webgpu ? 'webgpu' : 'wasm',
    executionProviders: webgpu ? ['webgpu', 'wasm'] : ['wasm'],
    threads: ort.env.wasm.numThreads,
    isolated,
    requested: prefer,
  };
}

const bytesCache = new Map();
async function fetchBytes(url) {
  let p = bytesCache.get(url);
  if (!p) {
    p = fetch(url).then(async (r) => {
      if (!r.ok) {
        let msg = `${r.status} ${r.statusText}`;
        try { msg = (await r.json()).error ?? msg; } catch { /* not JSON */ }
        throw new Error(`cannot load ${url}: ${msg}`);
      }
      return new Uint8Array(await r.arrayBuffer());
    });
    p.catch(() => bytesCache.delete(url));
    bytesCache.set(url, p);
  }
  return p;
}

/**
 * One model's encoder and decoder sessions. With `size`, the sessions are built for square
 * size x size frames only (free dimensions fixed: onnxruntime can plan memory once); without,
 * they take any size.
 */
export class ModelRunner {
  constructor(rt, name, info, encoder, decoder, size) {
    this.rt = rt;
    this.name = name;
    this.info = info;
    this.encoder = encoder;
    this.decoder = decoder;
    this.size = size;
    this.factor = info.factor;
    this.channels = info.channels;
  }

  static async create(rt, name, { size } = {}) {
    const info = await (await fetch(`/models/${encodeURIComponent(name)}/info.json`)).json();
    if (info.error) throw new Error(info.error);
    const [enc, dec] = await Promise.all([
      fetchBytes(`/models/${encodeURIComponent(name)}/encoder.onnx`),
      fetchBytes(`/models/${encodeURIComponent(name)}/decoder.onnx`),
    ]);
    const base = { executionProviders: rt.executionProviders, graphOptimizationLevel: 'all' };
    const f = info.factor;
    const encOpts = size ? { ...base, freeDimensionOverrides: { N: 1, H: size, W: size } } : base;
    const decOpts = size ? { ...base, freeDimensionOverrides: { N: 1, h: size / f, w: size / f } } : base;
    const encoder = await rt.ort.InferenceSession.create(enc, encOpts);
    const decoder = await rt.ort.InferenceSession.create(dec, decOpts);
    return new ModelRunner(rt, name, info, encoder, decoder, size);
  }

  /** Features of planar RGB whose sides are multiples of the factor: { data, c, h, w }. */
  async encode(data, w, h) {
    const t = new this.rt.ort.Tensor('float32', data, [1, 3, h, w]);
    const out = await this.encoder.run({ image: t });
    const r = out[this.encoder.outputNames[0]];
    const res = { data: r.data, c: r.dims[1], h: r.dims[2], w: r.dims[3] };
    if (r.location && r.location !== 'cpu') res.data = await r.getData(true);
    return res;
  }

  /** Planar RGB of features { data, c, h, w }: { data, w, h }. */
  async decode(f) {
    const t = new this.rt.ort.Tensor('float32', f.data, [1, f.c, f.h, f.w]);
    const out = await this.decoder.run({ features: t });
    const r = out[this.decoder.outputNames[0]];
    const data = r.location && r.location !== 'cpu' ? await r.getData(true) : r.data;
    return { data, w: r.dims[3], h: r.dims[2] };
  }

  /** Any size: reflect-pads to a multiple of the factor (at least two cells) first. */
  async encodeAnySize(data, w, h) {
    const f = this.factor;
    const H = Math.max(Math.ceil(h / f), 2) * f, W = Math.max(Math.ceil(w / f), 2) * f;
    return this.encode(padPlanar(data, 3, h, w, H, W), W, H);
  }

  /** Decodes and crops back to w x h. */
  async decodeTo(f, w, h) {
    const img = await this.decode(f);
    return { data: cropPlanar(img.data, 3, img.h, img.w, h, w), w, h };
  }

  async release() {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
